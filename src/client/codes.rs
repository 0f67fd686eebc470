//! The gateway's return codes (`stat.code`), their names and descriptions as the method pages
//! list them, for error texts, hints and dashboards.

/// The gateway code for a missing, unknown or expired user token.
pub(crate) const TOKEN_NOT_EXIST: i64 = 9_990_001;

/// The gateway's name for a return code (`"UNKNOWN"` for one not documented).
pub(crate) fn codename(code: i64) -> &'static str {
    match code {
        0 => "SUCCESS",
        1 => "KEY_NOTNULL",
        2 => "KEY_UNLAWFUL",
        3 => "KEY_HAS_EXPIRED",
        4 => "SIGN_METHOD_NOTNULL",
        5 => "SIGN_TYPE_NOTEXIST",
        6 => "SIGN_NOTNULL",
        7 => "SIGN_WRONG",
        8 => "METHOD_NOTNULL",
        9 => "METHOD_NOTEXIST_CODE",
        10 => "REQUESTMODE_NOTNULL",
        11 => "APPLICATIONID_NOTNULL",
        12 => "APPLICATIONID_NOTSAME",
        13 => "VERSION_NOTNULL",
        14 => "TIMESTAMP_NOTNULL",
        15 => "TIMESTAMP_FORMAT_ERROR",
        16 => "TIMESTAMP_OVERTIME",
        17 => "FORMAT_TYPE_NOTEXIST",
        -100 => "API_CALL_REPEAT",
        -500 => "API_SYSTEM_CALL_ERROR",
        -999 => "UNKNOWN_ERROR",
        9_990_001 => "TOKEN_NOT_EXIST",
        103_094 => "USERNAME_ERROE",
        103_095 => "PASSWORD_ERROE",
        _ => "UNKNOWN",
    }
}

/// The gateway's description of `code` (from the method pages).
pub(crate) fn code_description(code: i64) -> &'static str {
    match code {
        0 => "success",
        1 => "_akey can not be empty",
        2 => "_akey is illegal",
        3 => "_akey has expired",
        4 => "_sm parameter cannot be empty",
        5 => "_sm type does not exist",
        6 => "_sig parameter cannot be empty",
        7 => "Invalid signature, please check parameters and signature format",
        8 => "_mt parameter cannot be empty",
        9 => "The method name corresponding to _mt does not exist or is not registered in the service",
        10 => "_requestMode parameter cannot be empty",
        11 => "_aid parameter cannot be empty",
        12 => "_aid does not match the current key",
        13 => "_version version number cannot be empty",
        14 => "_timestamp timestamp cannot be empty",
        15 => "_timestamp timestamp formatting error",
        16 => "_timestamp has expired",
        17 => "_format type does not exist",
        -100 => "The interface is called repeatedly",
        -500 => "API call failed, system exception occurred",
        -999 => "Open platform system exception",
        9_990_001 => "token does not exist",
        103_094 => "user name error",
        103_095 => "password error",
        _ => "unknown error",
    }
}
