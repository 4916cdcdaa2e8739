"""The job store on PostgreSQL with `histoplan worker` processes: a private PostgreSQL 15 cluster
(initdb and pg_ctl in a temporary folder, Unix socket only, run as an unprivileged user), one
`histoplan serve --workers 0` for the API and 3 `histoplan worker` processes sharing the store
and the data folder.

- 30 jobs: each ends exactly once (one terminal event per job in the audit chain), all succeed,
  and more than one worker did the work.
- One worker is killed (kill -9) in the middle of a job: after its lease expires the job is run
  again by another worker and succeeds; the killed run's folder is gone.
- One worker is stopped (SIGSTOP) past its lease while it analyzes: another worker rescues the
  job; when the stopped worker resumes it cannot complete the job it lost (its fenced write
  fails, it says so, and the job keeps the rescuer's result).
- 20 concurrent identical POSTs with one Idempotency-Key make one batch on PostgreSQL too.
- The schema was migrated once although four processes started together; the audit chain
  verifies.
"""
import concurrent.futures
import json
import os
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import service_testlib as T  # noqa: E402

T.require_service()
check = T.Checks()
tmp = T.tempdir("pg")
os.chmod(tmp, 0o755)
pg = T.PrivatePostgres(tmp)
data = os.path.join(tmp, "data")
root = os.path.join(tmp, "slides")
os.makedirs(root)
procs = []
try:
    slides = [T.synth(os.path.join(root, f"s{i}.tiff"), 1100 + 100 * (i % 3), 1000, 500 + i) for i in range(10)]
    sub = T.token(data, "submitter", "lis", db=pg.url)
    S = sub["token"]
    LEASE = ["--lease-seconds", "6", "--heartbeat-seconds", "1", "--retry-base-ms", "0",
             "--max-attempts", "10", "--threads", "1", "--slide-root", root]
    srv = T.serve(data, os.path.join(tmp, "serve.log"), ["--workers", "0", "--slide-root", root], db=pg.url)
    procs.append(srv)
    workers = [T.worker(data, pg.url, os.path.join(tmp, f"worker{i}.log"), LEASE) for i in range(3)]
    procs += workers
    c = T.Client(srv.url, None)
    check(c("GET", "/v1/health").json()["store"] == "postgresql", "the API runs on the PostgreSQL store")
    # Each migration applied once: as many rows as versions, none twice.
    migrations = pg.psql("SELECT COUNT(*) || ' ' || COUNT(DISTINCT version) || ' ' || MAX(version) "
                         "FROM schema_migrations").strip().split()
    check(len(set(migrations)) == 1 and int(migrations[0]) >= 2,
          f"the schema was migrated once by four processes (rows, versions, newest: {migrations})")

    # -- 20 concurrent identical POSTs ------------------------------------------------------------
    storm = {"slides": [{"path": slides[0]}]}
    with concurrent.futures.ThreadPoolExecutor(20) as ex:
        rs = list(ex.map(lambda _: c("POST", "/v1/batches", S, storm, {"Idempotency-Key": "pg-storm"}), range(20)))
    ids = {x.json()["id"] for x in rs if x.status == 201}
    check(len(ids) == 1 and {x.status for x in rs} <= {201, 409},
          f"20 concurrent identical POSTs: one batch ({sorted({x.status for x in rs})})")
    storm_batch = ids.pop()

    # -- 30 jobs, 3 workers ----------------------------------------------------------------------
    r = c("POST", "/v1/batches", S, {"slides": [{"path": p} for p in slides * 3]}, {"Idempotency-Key": "thirty"})
    check(r.status == 201 and len(r.json()["jobs"]) == 30, "30 jobs accepted")
    bid = r.json()["id"]

    def running_owner(exclude=()):
        # Any running job: a small slide's job can end before its first heartbeat reports tiles.
        rows = pg.psql("SELECT j.id, w.pid FROM jobs j JOIN workers w ON w.id = j.lease_owner "
                       "WHERE j.state = 'running'").split()
        for row in rows:
            jid, pid = row.split("|")
            if int(pid) not in exclude:
                return jid, int(pid)
        return None, None

    def freeze_mid_job(exclude=()):
        """SIGSTOPs a worker that is in the middle of a job and returns (job, pid, fence) once the
        job is known to be still running under that worker after the stop: a job can finish
        between the query and the signal, and a test that then kills an idle worker proves nothing."""
        deadline = time.time() + 120
        while time.time() < deadline:
            jid, pid = running_owner(exclude)
            if jid is None:
                time.sleep(0.05)
                continue
            fence = pg.psql(f"SELECT fence FROM jobs WHERE id = '{jid}'").strip()
            os.kill(pid, signal.SIGSTOP)
            row = pg.psql(f"SELECT j.state, j.fence, w.pid FROM jobs j JOIN workers w ON w.id = j.lease_owner "
                          f"WHERE j.id = '{jid}'").strip()
            if row == f"running|{fence}|{pid}":
                return jid, pid, int(fence)
            os.kill(pid, signal.SIGCONT)
        return None, None, None

    # Let two workers finish a job each first: the check below that the work was shared must not
    # depend on how fast the one worker left running empties the queue.
    def finishers_so_far():
        lines = [json.loads(x) for x in pg.psql("SELECT line FROM audit ORDER BY seq").splitlines()]
        return {ln["actor"] for ln in lines if ln["event"] == "job.succeeded"}

    deadline = time.time() + 120
    while time.time() < deadline and len(finishers_so_far()) < 2:
        time.sleep(0.1)

    # Freeze two workers in the middle of their jobs before either is harmed, so that the queue
    # cannot drain between the two: kill one (kill -9), keep the other stopped past its lease.
    killed_job, killed_pid, killed_fence = freeze_mid_job()
    check(killed_job is not None, "a worker is in the middle of a job")
    stopped_job, stopped_pid, stopped_fence = freeze_mid_job(exclude=(killed_pid,))
    check(stopped_job is not None, "another worker is in the middle of a job")
    next(w for w in workers if w.p.pid == killed_pid).kill9()
    print(f"killed worker pid {killed_pid} during job {killed_job}")
    print(f"stopped worker pid {stopped_pid} during job {stopped_job} (fence {stopped_fence})")
    deadline = time.time() + 300
    while time.time() < deadline:
        st, fence = pg.psql(f"SELECT state, fence FROM jobs WHERE id = '{stopped_job}'").strip().split("|")
        if st == "succeeded":
            break
        time.sleep(0.2)
    check(st == "succeeded" and int(fence) > stopped_fence,
          f"the stopped worker's job was rescued and finished by another run (fence {stopped_fence} -> {fence})")
    rescued_dir = pg.psql(f"SELECT result_dir FROM jobs WHERE id = '{stopped_job}'").strip()
    os.kill(stopped_pid, signal.SIGCONT)
    stopped_log = next(w for w in workers if w.p.pid == stopped_pid).log_path
    deadline = time.time() + 120
    lost = False
    while time.time() < deadline and not lost:
        with open(stopped_log) as f:
            lost = f"job {stopped_job} attempt" in f.read() and "lease lost" in open(stopped_log).read()
        time.sleep(0.2)
    check(lost, "the resumed worker found its lease lost and discarded its run")
    after = pg.psql(f"SELECT state, fence, result_dir FROM jobs WHERE id = '{stopped_job}'").strip().split("|")
    check(after[0] == "succeeded" and after[2] == rescued_dir,
          "the rescued job keeps the rescuer's state and result")
    check(not os.path.exists(os.path.join(data, "results", stopped_job, f"a{stopped_fence}")),
          "the lost run's folder is gone")

    b = T.wait_batch(c, S, bid, 900)
    T.wait_batch(c, S, storm_batch, 300)
    check(b["counts"]["succeeded"] == 30, f"all 30 jobs succeeded ({b['counts']})")
    kj = c("GET", f"/v1/jobs/{killed_job}", S).json()
    kfence = int(pg.psql(f"SELECT fence FROM jobs WHERE id = '{killed_job}'").strip())
    check(kj["state"] == "succeeded" and kfence > killed_fence and kj["attempts"] >= 2,
          f"the killed worker's job finished elsewhere after its lease (attempts {kj['attempts']})")
    check(not os.path.exists(os.path.join(data, "results", killed_job, f"a{killed_fence}")),
          "the killed run's folder is gone")

    lines = [json.loads(x) for x in pg.psql("SELECT line FROM audit ORDER BY seq").splitlines()]
    terminal, finishers = {}, {}
    for ln in lines:
        if ln["event"] in ("job.succeeded", "job.failed", "job.cancelled"):
            terminal.setdefault(ln["details"]["job"], []).append(ln["event"])
            finishers[ln["actor"]] = finishers.get(ln["actor"], 0) + 1
    jobs30 = [j["id"] for j in b["jobs"]]
    check(all(len(terminal.get(j, [])) == 1 for j in jobs30), "each of the 30 jobs ended exactly once")
    check(len(finishers) >= 2, f"the work was shared by the workers ({finishers})")
    requeues = [ln for ln in lines if ln["event"] == "job.requeue"]
    check({ln["details"]["job"] for ln in requeues} >= {killed_job, stopped_job},
          "both lost runs were requeued when their leases expired")
    partial = [n for d, ds, fs in os.walk(data) for n in ds + fs if n.endswith(".partial")]
    check(not partial, "no partial folder")
    for j in jobs30:
        runs = os.listdir(os.path.join(data, "results", j))
        if len(runs) != 1:
            check(False, f"job {j}: one result folder ({runs})")
            break
    else:
        check(True, "every job has exactly one result folder")
finally:
    for p in procs:
        if p.alive():
            try:
                os.kill(p.p.pid, signal.SIGCONT)
            except OSError:
                pass
    for p in procs:
        p.terminate(60) if p.alive() else None
    if sys.exc_info()[0] is not None:
        pg.stop()  # a test that broke off must not leave its database server running
rc, out, err = T.run(["serve", "audit", "verify", "--data", data, "--db", pg.url])
check(rc == 0, f"the audit chain verifies: {out.strip()}{err.strip()}")
pg.stop()
shutil.rmtree(tmp, ignore_errors=True)
check.exit()
