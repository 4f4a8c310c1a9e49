"""The dashboards' test and benchmark harness: what runs panel SQL the way Grafana would.

Kept out of `pipeline.dashboards` (which builds the dashboards and nothing else), as
clickhouse-connect keeps its `tools/testing.py` apart from the driver:

- `macros`: Grafana's template variables and the ClickHouse plugin's macros, expanded as
  they are before a panel's SQL reaches ClickHouse;
- `queries`: every panel, variable and alert query of the committed dashboards, and the
  result columns each panel type needs;
- `timing`: every query timed on a store;
- `sample`: a small synthetic sample of every table the dashboards read, with known answers;
- `engine_rows`: a simulated company's traffic through the worker's processor, as the rows
  the worker would have stored.
"""
