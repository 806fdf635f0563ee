/* workload: a synthetic sweep job for memsweep's benchmarks (bench/run builds it with gcc).
 *
 * Grows to mem MiB in steps over `ramp` seconds, touching every page, holds for `hold` seconds
 * mostly asleep, optionally jumps to `jump` MiB once `jump_at` of the hold has passed, then writes
 * $BENCH_RESULTS/<id>.json with its own VmHWM and CPU time and exits 0. The result file appears
 * only when the job finished (written to a temporary name, then renamed), so "file present" means
 * "job done". The result directory comes from the environment, not the command line, so a job's
 * command is identical across runs and memsweep's per-command history can recognise it.
 *
 * Usage: workload id=NAME mem=MIB [ramp=S] [hold=S] [busy=FRACTION] [jump=MIB] [jump_at=FRACTION]
 *                 [out=PATH] [model=small|medium|large] [seed=N]
 *   busy: fraction of the ramp spent computing instead of sleeping (a dataset being tokenised).
 *   out: a per-run output file (written at the end), so the command line changes between runs,
 *        as a generated jobs file's does.
 *   model: sets mem (100/300/600 MiB) when mem is not given; seed: sets hold (1.0 + 0.2 * (seed % 4)
 *        s) when hold is not given. A parameter grid whose memory one parameter sets.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024L * 1024L)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_s(double s) {
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

static void spin_s(double s) {
    double end = now() + s;
    volatile unsigned long x = 0;
    while (now() < end)
        for (int i = 0; i < 10000; i++) x += i;
}

/* One anonymous mapping sized for the largest size this job will reach; pages are faulted in
 * (written) as the job "grows", so RSS follows the plan exactly. */
static char *arena;
static long touched; /* bytes touched so far */

static void grow_to(long bytes) {
    long page = sysconf(_SC_PAGESIZE);
    for (long off = touched; off < bytes; off += page) arena[off] = (char)(off / page + 1);
    if (bytes > touched) touched = bytes;
}

static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':') { v = atol(line + n + 1); break; }
    fclose(f);
    return v;
}

static void die(const char *msg, const char *arg) {
    fprintf(stderr, "workload: %s%s\n", msg, arg ? arg : "");
    exit(2);
}

int main(int argc, char **argv) {
    const char *id = NULL, *out = NULL;
    int hold_given = 0;
    double mem = -1, ramp = 0, hold = 0, busy = 0, jump = 0, jump_at = 0.75;
    for (int i = 1; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) die("arguments are key=value, got: ", argv[i]);
        *eq = 0;
        const char *k = argv[i], *v = eq + 1;
        char *end;
        if (strcmp(k, "id") == 0) { id = v; continue; }
        if (strcmp(k, "out") == 0) { out = v; continue; }
        if (strcmp(k, "model") == 0) {
            if (mem < 0) mem = strcmp(v, "large") == 0 ? 600 : strcmp(v, "medium") == 0 ? 300 : 100;
            continue;
        }
        double x = strtod(v, &end);
        if (*v == 0 || *end != 0 || x < 0) die("not a non-negative number: ", v);
        if (strcmp(k, "mem") == 0) mem = x;
        else if (strcmp(k, "ramp") == 0) ramp = x;
        else if (strcmp(k, "hold") == 0) { hold = x; hold_given = 1; }
        else if (strcmp(k, "seed") == 0) { if (!hold_given) hold = 1.0 + 0.2 * ((long)x % 4); }
        else if (strcmp(k, "busy") == 0) busy = x;
        else if (strcmp(k, "jump") == 0) jump = x;
        else if (strcmp(k, "jump_at") == 0) jump_at = x;
        else die("unknown key: ", k);
    }
    if (!id || mem < 0) die("usage: workload id=NAME mem=MIB [ramp=S] [hold=S] [busy=F] [jump=MIB] [jump_at=F]", NULL);
    const char *dir = getenv("BENCH_RESULTS");
    if (!dir || !*dir) die("BENCH_RESULTS (the result directory) is not set", NULL);

    double t0 = now();
    long target = (long)(mem * MIB), top = (long)((jump > mem ? jump : mem) * MIB);
    if (top > 0) {
        arena = mmap(NULL, top, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (arena == MAP_FAILED) die("mmap failed", NULL);
        /* No MADV_HUGEPAGE: measured here, huge-page faults cost more and varied 2x from run to
         * run (compaction); 4 KiB faults cost a steady ~0.4 ms per MiB. */
    }
    /* Ramp: 20 steps a second, at least one; each step touches its share of pages, then computes
     * for `busy` of the step's time and sleeps the rest. */
    int steps = ramp > 0 ? (int)(ramp * 20) : 1;
    if (steps < 1) steps = 1;
    for (int s = 1; s <= steps; s++) {
        double step_end = t0 + ramp * s / steps;
        grow_to(target / steps * s);
        if (busy > 0) spin_s((step_end - now()) * busy);
        sleep_s(step_end - now());
    }
    grow_to(target);
    double hold_start = now();
    if (jump > mem) {
        sleep_s(hold_start + hold * jump_at - now());
        grow_to((long)(jump * MIB));
    }
    sleep_s(hold_start + hold - now());

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s.json", dir, id);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) die("cannot write result file in BENCH_RESULTS: ", tmp);
    fprintf(f, "{\"id\": \"%s\", \"vmhwm_kb\": %ld, \"cpu_s\": %.4f, \"wall_s\": %.4f, \"pid\": %d}\n",
            id, status_kb("VmHWM"), cpu, now() - t0, (int)getpid());
    if (fclose(f) != 0 || rename(tmp, path) != 0) die("cannot finish result file: ", path);
    if (out) {
        FILE *o = fopen(out, "w");
        if (!o || fprintf(o, "%s done\n", id) < 0 || fclose(o) != 0) die("cannot write out=", out);
    }
    return 0;
}
