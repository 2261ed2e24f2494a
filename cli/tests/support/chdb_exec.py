"""Executes SQL statements on current ClickHouse in-process (chdb-core).

stdin: JSON [{"name": str, "statements": [str]}]; stdout: JSON [{"name", "ok", "error"?}].
Run from an empty working directory: chdb reads ./config.xml if present.
"""
import json
import sys
import tempfile

from chdb import session

cases = json.load(sys.stdin)
results = []
with tempfile.TemporaryDirectory() as path:
    s = session.Session(path)
    for case in cases:
        try:
            for sql in case["statements"]:
                s.query(sql)
            for table in case.get("tables", []):
                out = s.query(f"EXISTS TABLE {table}", "CSV").bytes().decode().strip()
                if out != "1":
                    raise RuntimeError(f"table {table} missing after CREATE")
            results.append({"name": case["name"], "ok": True})
        except Exception as e:  # noqa: BLE001 - report every failure back to the Rust test
            results.append({"name": case["name"], "ok": False, "error": str(e)})
    s.close()
json.dump(results, sys.stdout)
