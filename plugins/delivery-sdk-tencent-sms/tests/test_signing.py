"""Known-answer tests: TC3-HMAC-SHA256 reproduces Tencent Cloud's published worked example.

The example is the one of the "Signature v3" document (签名方法 v3), published for every product, e.g.
https://www.tencentcloud.com/document/product/267/37447 (and the SMS copy of that page): a CVM
``DescribeInstances`` call, ``POST /`` to ``cvm.tencentcloudapi.com`` with
``Content-Type: application/json; charset=utf-8``, the payload
``{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}``, timestamp
1551113065 (2019-02-25 UTC), SecretId ``AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******`` and SecretKey
``Gu5t9xGARNpq86cd98joQYCN3*******`` (the document masks its sample keys with asterisks; the asterisks are
part of the key the example signs with). Every intermediate value the document prints is checked too.
"""

from __future__ import annotations

from delivery_sdk_tencent_sms import signing

SECRET_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******"
SECRET_KEY = "Gu5t9xGARNpq86cd98joQYCN3*******"
TIMESTAMP = 1551113065
PAYLOAD = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
HEADERS = {
    "Content-Type": "application/json; charset=utf-8",
    "Host": "cvm.tencentcloudapi.com",
    "X-TC-Action": "DescribeInstances",
    "X-TC-Version": "2017-03-12",
    "X-TC-Timestamp": str(TIMESTAMP),
    "X-TC-Region": "ap-guangzhou",
}
CANONICAL_REQUEST = (
    "POST\n/\n\n"
    "content-type:application/json; charset=utf-8\n"
    "host:cvm.tencentcloudapi.com\n\n"
    "content-type;host\n"
    "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
)
STRING_TO_SIGN = (
    "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
    "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
)
SIGNATURE = "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
AUTHORIZATION = (
    "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, "
    "SignedHeaders=content-type;host, "
    "Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
)


def test_the_documents_worked_example_step_by_step() -> None:
    assert signing.sha256_hex(PAYLOAD) == "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    canonical = signing.canonical_request("POST", "", HEADERS, ("content-type", "host"), PAYLOAD)
    assert canonical == CANONICAL_REQUEST
    assert signing.string_to_sign(TIMESTAMP, "cvm", canonical) == STRING_TO_SIGN
    assert signing.sign(SECRET_KEY, TIMESTAMP, "cvm", canonical) == SIGNATURE


def test_the_documents_authorization_header_byte_for_byte() -> None:
    value = signing.authorization(SECRET_ID, SECRET_KEY, "cvm", TIMESTAMP, HEADERS, PAYLOAD)
    assert value == AUTHORIZATION
    assert signing.parse_authorization(value) == {
        "SecretId": SECRET_ID,
        "Date": "2019-02-25",
        "Service": "cvm",
        "SignedHeaders": "content-type;host",
        "Signature": SIGNATURE,
    }


def test_header_values_are_lower_cased_and_the_action_can_be_signed_too() -> None:
    canonical, names = signing.canonical_headers(HEADERS, ("x-tc-action", "host", "content-type"))
    assert names == "content-type;host;x-tc-action"
    assert canonical.endswith("x-tc-action:describeinstances\n")  # names and values lower-cased
    assert signing.utc_date(TIMESTAMP) == "2019-02-25"


def test_anything_changed_changes_the_signature() -> None:
    canonical = signing.canonical_request("POST", "", HEADERS, ("content-type", "host"), PAYLOAD + b" ")
    assert signing.sign(SECRET_KEY, TIMESTAMP, "cvm", canonical) != SIGNATURE
    assert signing.sign(SECRET_KEY, TIMESTAMP + 86400, "cvm", CANONICAL_REQUEST) != SIGNATURE
    assert signing.sign(SECRET_KEY, TIMESTAMP, "sms", CANONICAL_REQUEST) != SIGNATURE
    assert signing.parse_authorization("TC3-HMAC-SHA256 Credential=a/b/c/d, SignedHeaders=x, Signature=y") is None
