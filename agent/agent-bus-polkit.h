/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Authorisation of the agent's mutating D-Bus methods: root always; everyone else through polkit
 * (org.freedesktop.PolicyKit1), asked asynchronously so the bus keeps answering meanwhile. */

#include <systemd/sd-bus.h>

#define AGENT_POLKIT_ACTION "org.certfleet.agent1.manage"

/* Runs the method for real once authorised; replies to m itself (or returns an error for
 * sd-bus to reply with). */
typedef int (*AgentBusAuthorizedHandler)(sd_bus_message *m, void *userdata, sd_bus_error *error);

/* Returns 1 if the sender is root (the caller goes on at once), 0 if polkit was asked and handler
 * will run (or an error will be replied) when it answers, negative with error set if the request
 * cannot be authorised (polkit not on the bus: AccessDenied). userdata must outlive the bus. */
int agent_bus_authorize(sd_bus_message *m, const char *action, AgentBusAuthorizedHandler handler,
                        void *userdata, sd_bus_error *error);
