/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* journal MESSAGE_IDs, one per event kind (`journalctl MESSAGE_ID=…`). Logged with the
 * CERTIFICATE= field naming the tracked certificate. */

#define AGENT_MESSAGE_RENEWAL_STARTED  "249c291501ad46609a4815b4a84893f3"
#define AGENT_MESSAGE_ISSUED           "116687b6ef1746019ec48c26ff134281"
#define AGENT_MESSAGE_DEPLOYED         "81d5fac5f52e495b99d943ccd07d61de"
#define AGENT_MESSAGE_FAILED           "0eb9fa30d51c47978d0c7cb36f36f615"
#define AGENT_MESSAGE_SCHEDULE         "cb596b5014534d90b1bf21d313c56099"
#define AGENT_MESSAGE_STATE_BROKEN     "a5fe543a6f654d2cabc79df1b1482e61"
#define AGENT_MESSAGE_CONFIG           "45af3848055142e78fb0ce62136c27b7"
#define AGENT_MESSAGE_EXPIRED          "75e905365d1741a9ab226eae8cdbc218"
