"""Airflow DAG: nightly backfill, then an incremental warehouse load. UNTESTED HERE (no Airflow).

Each task is a `wirestream` command; both are idempotent, so Airflow retries and manual re-runs of
a day are safe. Uses the data interval, so a backfilled DAG run reprocesses exactly its own day.
"""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

with DAG(
    dag_id="wirestream_backfill",
    schedule="15 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 3, "retry_delay": timedelta(minutes=10)},
) as dag:
    backfill = BashOperator(
        task_id="backfill",
        bash_command=(
            "wirestream backfill --since {{ data_interval_start | ts }} --until {{ data_interval_end | ts }} "
            "--output /data/wirestream"
        ),
    )
    load = BashOperator(
        task_id="load_warehouse",
        bash_command="wirestream load duckdb --db /data/warehouse.duckdb --output /data/wirestream",
    )
    backfill >> load
