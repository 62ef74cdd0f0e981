"""Known-answer tests: Alibaba Cloud's signature V3 reproduces the provider's published worked example.

The example is the one of the "Request syntax and signature method V3" document (V3版本请求体&签名机制):
https://help.aliyun.com/zh/sdk/product-overview/v3-request-structure-and-signature
(English: https://www.alibabacloud.com/help/en/sdk/product-overview/v3-request-structure-and-signature):
an ECS ``RunInstances`` call, ``POST /`` to ``ecs.cn-shanghai.aliyuncs.com`` with the query
``ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai`` and an empty body,
AccessKey ``YourAccessKeyId`` / ``YourAccessKeySecret``, ``x-acs-date`` 2023-10-26T10:22:32Z and nonce
``3156853299f313e23d1673dc12e1703d``. Every intermediate value the document prints is checked too.
"""

from __future__ import annotations

from delivery_sdk_aliyun_sms import signing

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
HEADERS = {
    "host": "ecs.cn-shanghai.aliyuncs.com",
    "x-acs-action": "RunInstances",
    "x-acs-content-sha256": EMPTY_SHA256,
    "x-acs-date": "2023-10-26T10:22:32Z",
    "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
    "x-acs-version": "2014-05-26",
}
QUERY = {"ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd", "RegionId": "cn-shanghai"}
# the document's printed values, byte for byte
CANONICAL_HEADERS = (
    "host:ecs.cn-shanghai.aliyuncs.com\n"
    "x-acs-action:RunInstances\n"
    "x-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
    "x-acs-date:2023-10-26T10:22:32Z\n"
    "x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\n"
    "x-acs-version:2014-05-26\n"
)
SIGNED_HEADERS = "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
STRING_TO_SIGN = "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
SIGNATURE = "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
AUTHORIZATION = (
    "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,"
    "SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
    "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
)


def test_the_documents_worked_example_step_by_step() -> None:
    assert signing.sha256_hex(b"") == EMPTY_SHA256
    assert signing.canonical_query(QUERY) == (
        "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai"
    )
    assert signing.canonical_headers(HEADERS) == (CANONICAL_HEADERS, SIGNED_HEADERS)
    canonical = signing.canonical_request("POST", "/", QUERY, HEADERS, b"")
    assert canonical == "\n".join(
        ["POST", "/", signing.canonical_query(QUERY), CANONICAL_HEADERS, SIGNED_HEADERS, EMPTY_SHA256]
    )
    assert signing.string_to_sign(canonical) == STRING_TO_SIGN
    assert signing.sign("YourAccessKeySecret", canonical) == SIGNATURE


def test_the_documents_authorization_header_byte_for_byte() -> None:
    value = signing.authorization("YourAccessKeyId", "YourAccessKeySecret", "POST", "/", QUERY, HEADERS, b"")
    assert value == AUTHORIZATION
    assert signing.parse_authorization(value) == {
        "Credential": "YourAccessKeyId",
        "SignedHeaders": SIGNED_HEADERS,
        "Signature": SIGNATURE,
    }


def test_header_names_are_lower_cased_trimmed_and_only_the_documented_ones_signed() -> None:
    mixed = {k.upper(): f"  {v} " for k, v in HEADERS.items()} | {"Accept": "application/json", "User-Agent": "x"}
    assert signing.canonical_headers(mixed) == (CANONICAL_HEADERS, SIGNED_HEADERS)
    value = signing.authorization("YourAccessKeyId", "YourAccessKeySecret", "POST", "/", QUERY, mixed, b"")
    assert value == AUTHORIZATION


def test_percent_encoding_follows_rfc_3986_as_documented() -> None:
    assert signing.encode("AZaz09-_.~") == "AZaz09-_.~"
    assert signing.encode("a b*c+d/e=f&g~") == "a%20b%2Ac%2Bd%2Fe%3Df%26g~"
    assert signing.encode("武汉中院") == "%E6%AD%A6%E6%B1%89%E4%B8%AD%E9%99%A2"
    assert signing.form_body({"b": "2 3", "a": "签"}) == b"a=%E7%AD%BE&b=2%203"


def test_anything_changed_changes_the_signature() -> None:
    canonical = signing.canonical_request("POST", "/", QUERY, HEADERS, b"")
    assert signing.sign("YourAccessKeySecret ", canonical) != SIGNATURE
    other = signing.canonical_request("POST", "/", {**QUERY, "RegionId": "cn-beijing"}, HEADERS, b"")
    assert signing.sign("YourAccessKeySecret", other) != SIGNATURE
    assert signing.parse_authorization("HMAC-SHA1 Credential=x") is None
    assert signing.parse_authorization("ACS3-HMAC-SHA256 Credential=a,Credential=b,Signature=c") is None
