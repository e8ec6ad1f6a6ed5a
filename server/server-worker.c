/* SPDX-License-Identifier: Apache-2.0 */

#include <errno.h>
#include <stdlib.h>

#include "server/server-manager.h"
#include "server/server-worker.h"
#include "shared/log.h"

struct ServerWorker {
        ServerManager *manager;
        unsigned index;
        Store *store;                  /* the manager's, shared by every worker */
        ServerSnapshot *snapshot;      /* held from request start to request end */
};

int server_worker_new(ServerManager *m, unsigned index, ServerWorker **ret) {
        ServerWorker *w;

        if (!m || !ret)
                return -EINVAL;
        if (!server_manager_get_store(m))
                return log_error_errno(-ESTALE, "Worker %u: the store is not open.", index);

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->manager = m;
        w->index = index;
        w->store = server_manager_get_store(m);

        *ret = w;
        return 0;
}

ServerWorker *server_worker_free(ServerWorker *w) {
        if (!w)
                return NULL;

        server_snapshot_unref(w->snapshot);
        free(w);
        return NULL;
}

void server_worker_request_start(ServerWorker *w) {
        if (!w)
                return;
        server_snapshot_unref(w->snapshot);
        w->snapshot = server_manager_snapshot_ref(w->manager);
}

void server_worker_request_end(ServerWorker *w) {
        if (!w)
                return;
        /* A transaction left open by a failed handler must not leak into the next request. */
        store_rollback(w->store);
        w->snapshot = server_snapshot_unref(w->snapshot);
}

Store *server_worker_get_store(ServerWorker *w) {
        return w ? w->store : NULL;
}

static ServerSnapshot *worker_snapshot(ServerWorker *w) {
        if (!w)
                return NULL;
        /* Outside a request (not expected, but harmless): the current generation. */
        if (!w->snapshot)
                w->snapshot = server_manager_snapshot_ref(w->manager);
        return w->snapshot;
}

const ProfileSet *server_worker_get_profiles(ServerWorker *w) {
        ServerSnapshot *s = worker_snapshot(w);
        return s ? server_snapshot_get_config(s)->profiles : NULL;
}

const ServerConfig *server_worker_get_config(ServerWorker *w) {
        ServerSnapshot *s = worker_snapshot(w);
        return s ? server_snapshot_get_config(s) : NULL;
}
