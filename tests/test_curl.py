"""`podnet curl`, pure: the curl command line, the header dump, the JSON report."""

from __future__ import annotations

from pathlib import Path

from podnet.cli.curl import curl_argv, parse_headers, report


def test_argv_writes_headers_and_body_to_files_and_facts_as_json():
    argv = curl_argv("http://web/", Path("/t/h"), Path("/t/b"), 2.5, insecure=True)
    assert argv[0] == "curl" and argv[-2:] == ["--", "http://web/"]
    assert argv[argv.index("--dump-header") + 1] == "/t/h"
    assert argv[argv.index("--output") + 1] == "/t/b"
    assert argv[argv.index("--write-out") + 1] == "%{json}"
    assert argv[argv.index("--max-time") + 1] == "2.5" and "--insecure" in argv
    assert "--insecure" not in curl_argv("http://x/", Path("h"), Path("b"), 5, insecure=False)


def test_the_last_response_of_the_dump_counts_and_repeated_headers_join():
    dump = (
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\n"
        "Set-Cookie: b=2\r\nX-Colon: a:b\r\n\r\n"
    )
    status, headers = parse_headers(dump)
    assert status == "HTTP/1.1 200 OK"
    assert headers == {"Content-Type": "text/plain", "Set-Cookie": "a=1, b=2", "X-Colon": "a:b"}
    assert parse_headers("") == ("", {})


def test_report_of_an_answer_and_of_a_failure():
    info = {"http_code": 200, "time_total": 0.0031, "remote_ip": "10.96.1.10", "remote_port": 80}
    doc = report("http://web/", "x/a", {**info, "exitcode": 0}, "HTTP/1.1 200 OK\r\n\r\n", b"hi\n")
    assert doc == {
        "url": "http://web/",
        "from": "x/a",
        "status": 200,
        "statusLine": "HTTP/1.1 200 OK",
        "headers": {},
        "body": "hi\n",
        "seconds": 0.0031,
        "address": "10.96.1.10",
        "port": 80,
    }
    failed = {"http_code": 0, "remote_ip": "", "exitcode": 7, "errormsg": "Failed to connect"}
    doc = report("http://empty/", "internet", failed, "", b"")
    assert doc["status"] is None and doc["address"] is None
    assert doc["exitCode"] == 7 and doc["error"] == "Failed to connect"
