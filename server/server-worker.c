/* SPDX-License-Identifier: Apache-2.0 */

#include <errno.h>
#include <stdlib.h>

#include "server/server-manager.h"
#include "server/server-worker.h"
#include "shared/log.h"

struct ServerWorker {
        ServerManager *manager;
        unsigned index;
        Store *store;
        ServerSnapshot *snapshot;      /* held from request start to request end */
};

int server_worker_new(ServerManager *m, unsigned index, ServerWorker **ret) {
        _cleanup_(server_snapshot_unrefp) ServerSnapshot *snapshot = NULL;
        ServerWorker *w;
        const ServerConfig *c;
        int r;

        if (!m || !ret)
                return -EINVAL;

        snapshot = server_manager_snapshot_ref(m);
        if (!snapshot)
                return -ESTALE;
        c = server_snapshot_get_config(snapshot);

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->manager = m;
        w->index = index;

        /* A store connection belongs to one thread (store.h); this is that thread. */
        r = store_open(c->database, &w->store);
        if (r < 0) {
                free(w);
                return log_error_errno(r, "Worker %u: failed to open store '%s': %m", index, c->database);
        }

        *ret = w;
        return 0;
}

ServerWorker *server_worker_free(ServerWorker *w) {
        if (!w)
                return NULL;

        server_snapshot_unref(w->snapshot);
        store_close(w->store);
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
