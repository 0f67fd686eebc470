"""Opretail gateway stat.code names, and the PromQL that labels a series' `code` with them.

Used by gen_dashboards.py (dashboards/*.json) and to write the recording rule
opretail:api_errors:increase15m in alerts/opretail.rules.yml (`python3 codes.py X` prints the
expression wrapped around X).
"""
import sys

CODES = [
    (0, "SUCCESS"), (1, "KEY_NOTNULL"), (2, "KEY_UNLAWFUL"), (3, "KEY_HAS_EXPIRED"),
    (4, "SIGN_METHOD_NOTNULL"), (5, "SIGN_TYPE_NOTEXIST"), (6, "SIGN_NOTNULL"), (7, "SIGN_WRONG"),
    (8, "METHOD_NOTNULL"), (9, "METHOD_NOTEXIST_CODE"), (10, "REQUESTMODE_NOTNULL"),
    (11, "APPLICATIONID_NOTNULL"), (12, "APPLICATIONID_NOTSAME"), (13, "VERSION_NOTNULL"),
    (14, "TIMESTAMP_NOTNULL"), (15, "TIMESTAMP_FORMAT_ERROR"), (16, "TIMESTAMP_OVERTIME"),
    (17, "FORMAT_TYPE_NOTEXIST"), (-100, "API_CALL_REPEAT"), (-500, "API_SYSTEM_CALL_ERROR"),
    (-999, "UNKNOWN_ERROR"), (9990001, "TOKEN_NOT_EXIST"),
]

# Authentication / signature failures: always critical.
AUTH_CODES = [1, 2, 3, 7, 12, 9990001]
AUTH_CODE_REGEX = "|".join(str(c) for c in AUTH_CODES)


def with_code_name(expr: str, indent: str = "") -> str:
    """Wraps expr so every series gets code_name="<code> <NAME>" (code_name=code for codes without
    a name, such as http_503, timeout, transport, decode)."""
    out = f'label_replace({expr}, "code_name", "$1", "code", "(.*)")'
    for code, name in CODES:
        out = f'label_replace({out}, "code_name", "{code} {name}", "code", "{code}")'
    return out


if __name__ == "__main__":
    print(with_code_name(sys.argv[1] if len(sys.argv) > 1 else "X"))
