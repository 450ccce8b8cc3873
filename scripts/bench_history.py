"""The history benchmark (scripts/bench.sh history): the same five questions
asked of Sagedeck's job history over HTTP and of MLflow's tracking store
(`search_runs` on its SQLite backend), p50/p99 over many requests.

Sagedeck's database is seeded by `sagedeck seed-history` (100,000 local and
100,000 SageMaker jobs); MLflow's by this script: MLflow makes its schema,
then 100,000 runs with the same metrics per run (5 epochs of 4 metrics, 40
step losses) are written into it with SQL, as a year of runs would have left
them. Usage: bench_history.py SAGEDECK_URL SAGEDECK_DB MLFLOW_DIR [REQUESTS]
"""

import http.client
import json
import os
import sqlite3
import statistics
import sys
import time
import urllib.parse
import uuid

RUNS = int(os.environ.get("HISTORY_JOBS", "100000"))
EPOCHS, STEPS, PAGE = 5, 40, 50


def percentiles(samples):
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, int(round(0.99 * (len(samples) - 1))))]
    return statistics.median(samples) * 1000, p99 * 1000


def timed(fn, requests):
    for _ in range(5):
        fn()
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


class Console:
    def __init__(self, url):
        parsed = urllib.parse.urlparse(url)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port)

    def post(self, path, body, content_type):
        self.conn.request("POST", path, body=body, headers={"content-type": content_type, "accept": "application/json"})
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise SystemExit(f"{path} answered {response.status}: {data[:300]!r}")
        return data

    def history(self, **query):
        body = json.dumps({"query": {"status": "", "name": "", "runs_on": None, "older": None, "newer": None, **query}})
        return json.loads(self.post("/api/training/history", body, "application/json"))

    def get(self, path):
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise SystemExit(f"{path} answered {response.status}")
        return data


def seed_mlflow(directory):
    from mlflow.tracking import MlflowClient

    path = os.path.join(directory, "mlflow.db")
    uri = f"sqlite:///{path}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("history", artifact_location=f"file://{directory}/artifacts")
    template = client.create_run(experiment, run_name="template")
    client.log_param(template.info.run_id, "learning_rate", "0.001")
    client.log_metric(template.info.run_id, "loss", 1.0, step=0)
    client.set_terminated(template.info.run_id)
    db = sqlite3.connect(path)
    columns = [c[1] for c in db.execute("PRAGMA table_info(runs)")]
    row = dict(zip(columns, db.execute("SELECT * FROM runs WHERE run_uuid = ?", (template.info.run_id,)).fetchone()))
    db.execute("DELETE FROM runs WHERE run_uuid = ?", (template.info.run_id,))
    for table in ("metrics", "latest_metrics", "params", "tags"):
        db.execute(f"DELETE FROM {table} WHERE run_uuid = ?", (template.info.run_id,))
    newest = 1_796_083_200_000  # 2026-12-01, as seed-history
    year = 365 * 24 * 3600 * 1000
    runs, metrics, latest, params, tags = [], [], [], [], []
    families = ["flowers", "dogs", "birds", "leaves", "scans"]
    rates = ["1e-3", "3e-4", "1e-2"]
    for i in range(RUNS):
        run_id = uuid.uuid4().hex
        start = newest - year + (i + 1) * year // RUNS
        status = "FAILED" if i % 50 in (0, 1, 2) else "KILLED" if i % 50 == 3 else "FINISHED"
        name = f"{families[i % 5]}-local-lr{rates[i % 3]}-{i:06d}"
        accuracy = 0.5 + 0.4 * ((i % 97) / 97.0)
        r = dict(row, run_uuid=run_id, name=name, status=status, start_time=start, end_time=start + 600_000,
                 artifact_uri=f"file://{directory}/artifacts/{run_id}")
        runs.append(tuple(r[c] for c in columns))
        for e in range(1, EPOCHS + 1):
            f = e / EPOCHS
            for key, value in (("train_loss", 1.5 - f), ("train_accuracy", accuracy * f), ("valid_loss", 1.6 - f), ("valid_accuracy", accuracy * f * 0.95)):
                metrics.append((key, value, start + e, run_id, e, 0))
        for s in range(1, STEPS + 1):
            metrics.append(("loss", 2.0 / (1.0 + s / 10.0), start + s, run_id, s, 0))
        for key, value in (("train_loss", 0.5), ("train_accuracy", accuracy), ("valid_loss", 0.6), ("valid_accuracy", accuracy * 0.95), ("loss", 0.4)):
            latest.append((key, value, start, EPOCHS, 0, run_id))
        params.append(("learning_rate", rates[i % 3], run_id))
        tags.append(("mlflow.runName", name, run_id))
    db.executemany(f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", runs)
    db.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)", metrics)
    db.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, ?, ?)", latest)
    db.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", params)
    db.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tags)
    db.commit()
    db.execute("ANALYZE")
    db.close()
    middle = runs[RUNS // 2][columns.index("run_uuid")]
    return MlflowClient(tracking_uri=uri), experiment, middle


def mlflow_questions(client, experiment, middle_run, deep_token, order):
    """The six questions, asked of an MlflowClient (in process or through its server)."""
    return {
        "first page": lambda: client.search_runs([experiment], max_results=PAGE, order_by=order),
        "deep page": lambda: client.search_runs([experiment], max_results=PAGE, order_by=order, page_token=deep_token),
        "status filter": lambda: client.search_runs([experiment], "attributes.status = 'FAILED'", max_results=PAGE, order_by=order),
        "name search": lambda: client.search_runs([experiment], "attributes.run_name ILIKE '%00042%'", max_results=PAGE, order_by=order),
        "broad name search": lambda: client.search_runs([experiment], "attributes.run_name ILIKE '%flowers%'", max_results=PAGE, order_by=order),
        "job page": lambda: (client.get_run(middle_run), client.get_metric_history(middle_run, "loss")),
    }


def served_results(directory, experiment, middle_run, deep_token, order, requests):
    """Starts `mlflow server` on the seeded store (one worker, as Sagedeck is
    one process) and times the same questions through its REST API."""
    import socket
    import subprocess
    from mlflow.tracking import MlflowClient

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "mlflow"), "server", "--backend-store-uri", f"sqlite:///{directory}/mlflow.db",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while True:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            finally:
                c.close()
            if time.time() > deadline or server.poll() is not None:
                raise SystemExit("mlflow server did not start")
            time.sleep(0.5)
        client = MlflowClient(tracking_uri=f"http://127.0.0.1:{port}")
        questions = mlflow_questions(client, experiment, middle_run, deep_token, order)
        return {what: timed(fn, requests) for what, fn in questions.items()}
    finally:
        server.terminate()
        server.wait(timeout=30)


def main():
    url, sagedeck_db, mlflow_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    requests = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    console = Console(url)
    # The deep page starts halfway down the local jobs: 100,000 rows newer.
    db = sqlite3.connect(f"file:{sagedeck_db}?mode=ro", uri=True)
    middle_id = RUNS // 2
    (middle_created,) = db.execute("SELECT created_at FROM local_jobs WHERE id = ?", (middle_id,)).fetchone()
    db.close()
    deep = f"{middle_created}~local~{middle_id}"
    checks = {
        "first page": console.history(),
        "deep page": console.history(older=deep),
        "status filter": console.history(status="Failed"),
        "name search": console.history(name="00042"),
        "broad name search": console.history(name="flowers"),
    }
    for what, page in checks.items():
        if not page["rows"]:
            raise SystemExit(f"Sagedeck's {what} is empty: {json.dumps(page)[:300]}")
    print(f"Sagedeck: {checks['first page']['local_total']} local + {checks['first page']['sagemaker_total']} SageMaker jobs; "
          f"{checks['status filter']['local_total'] + checks['status filter']['sagemaker_total']} failed; "
          f"{checks['name search']['local_total'] + checks['name search']['sagemaker_total']} named *00042*; "
          f"{checks['broad name search']['local_total'] + checks['broad name search']['sagemaker_total']} named *flowers*", flush=True)
    sagedeck = {
        "first page": lambda: console.history(),
        "deep page": lambda: console.history(older=deep),
        "status filter": lambda: console.history(status="Failed"),
        "name search": lambda: console.history(name="00042"),
        "broad name search": lambda: console.history(name="flowers"),
        "job page": lambda: console.post("/api/training/local/get", f"id={middle_id}", "application/x-www-form-urlencoded"),
    }
    pages = {
        "/training": lambda: console.get("/training"),
        "/training?status=Failed": lambda: console.get("/training?status=Failed"),
        f"/training/local/{middle_id}": lambda: console.get(f"/training/local/{middle_id}"),
    }
    results = {what: timed(fn, requests) for what, fn in sagedeck.items()}
    page_results = {what: timed(fn, requests) for what, fn in pages.items()}

    started = time.perf_counter()
    client, experiment, middle_run = seed_mlflow(mlflow_dir)
    print(f"MLflow: {RUNS} runs seeded in {time.perf_counter() - started:.1f} s", flush=True)
    from mlflow.utils.search_utils import SearchUtils

    deep_token = SearchUtils.create_page_token(RUNS // 2)
    order = ["attributes.start_time DESC"]
    mlflow = mlflow_questions(client, experiment, middle_run, deep_token, order)
    for what, fn in mlflow.items():
        if what != "job page" and len(fn()) == 0:
            raise SystemExit(f"MLflow's {what} is empty")
    mlflow_requests = max(20, requests // 10)
    mlflow_results = {what: timed(fn, mlflow_requests) for what, fn in mlflow.items()}

    # The same questions through MLflow's tracking server (what its UI and
    # its users' clients talk to), over HTTP on loopback as Sagedeck is asked.
    served = served_results(mlflow_dir, experiment, middle_run, deep_token, order, mlflow_requests)

    print()
    print(f"| query (page of {PAGE}) | Sagedeck p50 | Sagedeck p99 | MLflow in process p50 | MLflow server p50 | MLflow server p99 | in process / Sagedeck | server / Sagedeck |")
    print("|---|---|---|---|---|---|---|---|")
    for what in sagedeck:
        s50, s99 = results[what]
        m50, _ = mlflow_results[what]
        h50, h99 = served[what]
        print(f"| {what} | {s50:.1f} ms | {s99:.1f} ms | {m50:.1f} ms | {h50:.1f} ms | {h99:.1f} ms | {m50 / s50:.0f}× | {h50 / s50:.0f}× |")
    print()
    print("| server-rendered page | p50 | p99 |")
    print("|---|---|---|")
    for what, (p50, p99) in page_results.items():
        print(f"| {what} | {p50:.1f} ms | {p99:.1f} ms |")
    print(f"\n({requests} requests per Sagedeck query, {mlflow_requests} per MLflow query, after 5 warm-up requests each)")


if __name__ == "__main__":
    main()
