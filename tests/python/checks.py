"""What the Python test clients share: a check that ends the run with a message, and the AWS
error a call raises (botocore's parse of the error response)."""

import sys

from botocore.exceptions import ClientError


def check(cond, what):
    if not cond:
        sys.exit(f"FAIL: {what}")


def error_of(fn, **kw):
    """(error code, HTTP status, message) of the call, which must fail."""
    try:
        fn(**kw)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Message"]
    sys.exit(f"FAIL: {fn.__name__}({kw}) succeeded")


def code(fn, **kw):
    """The error code of the call, which must fail."""
    return error_of(fn, **kw)[0]
