/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "agent/agent-worker.h"

struct AgentWorker {
        sd_event_source *source;
        int efd;
        pthread_t thread;
        bool busy;
        AgentWorkFunc work;
        void *work_userdata;
        AgentWorkDoneFunc done;
        void *done_userdata;
};

static void *worker_thread(void *arg) {
        AgentWorker *w = arg;
        uint64_t one = 1;

        w->work(w->work_userdata);
        /* Publishing the completion is the thread's last access to w. */
        (void) !write(w->efd, &one, sizeof one);
        return NULL;
}

static int on_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        AgentWorker *w = userdata;
        AgentWorkDoneFunc done;
        void *data;
        uint64_t v;

        if (read(w->efd, &v, sizeof v) != sizeof v)
                return 0;
        if (!w->busy)
                return 0;
        pthread_join(w->thread, NULL);
        done = w->done;
        data = w->done_userdata;
        w->busy = false;
        w->work = NULL;
        w->done = NULL;
        w->work_userdata = w->done_userdata = NULL;
        if (done)
                done(data);
        return 0;
}

int agent_worker_new(sd_event *e, AgentWorker **ret) {
        AgentWorker *w;
        int r;

        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->efd < 0) {
                r = -errno;
                free(w);
                return r;
        }
        r = sd_event_add_io(e, &w->source, w->efd, EPOLLIN, on_done, w);
        if (r < 0) {
                close(w->efd);
                free(w);
                return r;
        }
        (void) sd_event_source_set_description(w->source, "agent-worker");
        *ret = w;
        return 0;
}

AgentWorker *agent_worker_free(AgentWorker *w) {
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->source);
        if (w->busy) {
                /* The thread still uses w and efd: leave both to the exiting process. */
                pthread_detach(w->thread);
                return NULL;
        }
        close(w->efd);
        free(w);
        return NULL;
}

bool agent_worker_busy(AgentWorker *w) {
        return w->busy;
}

int agent_worker_submit(AgentWorker *w, AgentWorkFunc work, void *work_userdata,
                        AgentWorkDoneFunc done, void *done_userdata) {
        sigset_t all, saved;
        int r;

        if (w->busy)
                return -EBUSY;
        w->work = work;
        w->work_userdata = work_userdata;
        w->done = done;
        w->done_userdata = done_userdata;
        /* The thread must not take the signals sd-event handles on the main thread. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &saved);
        r = -pthread_create(&w->thread, NULL, worker_thread, w);
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        if (r < 0) {
                w->work = NULL;
                w->done = NULL;
                w->work_userdata = w->done_userdata = NULL;
                return r;
        }
        w->busy = true;
        return 0;
}
