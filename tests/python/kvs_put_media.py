"""A KVS PutMedia producer, as kvssink and the producer SDKs send it: `POST /putMedia` with the
stream named and timed by headers, SigV4-signed for service `kinesisvideo` over the empty
payload (a streamed body is not hashed), and the Matroska body sent chunked, 64 KiB at a time.

Usage: kvs_put_media.py <endpoint> <file> <header:value>... [--key <id> <secret>]
Prints the response: `HTTP <status> <x-amzn-ErrorType>` on the first line, then the body (the
acknowledgements, one JSON object per line)."""

import http.client
import sys
import urllib.parse

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

args = sys.argv[1:]
key = None
if "--key" in args:
    i = args.index("--key")
    key = (args[i + 1], args[i + 2])
    args = args[:i] + args[i + 3:]
endpoint, path, headers = args[0], args[1], dict(h.split(":", 1) for h in args[2:])
url = urllib.parse.urlparse(endpoint)
headers.update({"Host": url.netloc, "Transfer-Encoding": "chunked", "Connection": "keep-alive",
                "User-Agent": "sluice-test-putmedia/1.0"})
if key:
    request = AWSRequest(method="POST", url=endpoint + "/putMedia", headers=dict(headers), data=b"")
    SigV4Auth(Credentials(*key), "kinesisvideo", "us-east-1").add_auth(request)
    headers = dict(request.headers.items())

conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
conn.putrequest("POST", "/putMedia", skip_host=True, skip_accept_encoding=True)
for name, value in headers.items():
    conn.putheader(name, value)
conn.endheaders()
with open(path, "rb") as f:
    while True:
        chunk = f.read(64 * 1024)
        if not chunk:
            break
        try:
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            break
try:
    conn.send(b"0\r\n\r\n")
except (BrokenPipeError, ConnectionResetError):
    pass
resp = conn.getresponse()
print("HTTP", resp.status, resp.getheader("x-amzn-ErrorType") or "-")
sys.stdout.write(resp.read().decode())
