/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The D-Bus layer (org.certfleet.Agent1, DESIGN §6), implemented in agent-bus*.c. agent-main.c
 * calls agent_bus_attach() once after the manager has loaded. */

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "agent/agent-manager.h"

/* Connects to the system bus (honouring $DBUS_SYSTEM_BUS_ADDRESS), attaches the connection to e,
 * exports the manager and the certificates that exist at this point (agent_manager_get_certs();
 * later ones arrive as AGENT_CHANGE_ADDED), registers a change callback with
 * agent_manager_set_change_callback() and requests the name org.certfleet.Agent1.
 * The caller owns *ret_bus (sd_bus_flush_close_unref). Errors are returned, not logged: the agent
 * keeps running without the bus if this fails. */
int agent_bus_attach(AgentManager *m, sd_event *e, sd_bus **ret_bus);
