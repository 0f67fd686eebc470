//! The gateway's return codes as the simulator answers them: the number, the name it puts in
//! `stat.codename` and the text it puts in `result`, from the vendor's method pages plus the
//! codes seen live (FACTS.md; the misspelt `…_ERROE` names are the gateway's). The simulator
//! keeps its own table instead of the client's, so that a code the client names or reads
//! wrongly shows up as a disagreement rather than agreeing with itself. [`Refusal`] is a
//! request the gateway turns down: a code and its `result` text.

/// Defines each code once: a constant named as the gateway names the code (its `codename`),
/// and its row in `CODES` with the `result` text.
macro_rules! gateway_codes {
    ($($name:ident = $code:literal, $text:literal;)*) => {
        $(pub(crate) const $name: i64 = $code;)*

        /// Every code the gateway documents: (code, `codename`, `result` text).
        const CODES: &[(i64, &str, &str)] = &[$(($name, stringify!($name), $text)),*];
    };
}

gateway_codes! {
    SUCCESS = 0, "success";
    KEY_NOTNULL = 1, "_akey can not be empty";
    KEY_UNLAWFUL = 2, "_akey is illegal";
    KEY_HAS_EXPIRED = 3, "_akey has expired";
    SIGN_METHOD_NOTNULL = 4, "_sm parameter cannot be empty";
    SIGN_TYPE_NOTEXIST = 5, "_sm type does not exist";
    SIGN_NOTNULL = 6, "_sig parameter cannot be empty";
    SIGN_WRONG = 7, "Invalid signature, please check parameters and signature format";
    METHOD_NOTNULL = 8, "_mt parameter cannot be empty";
    METHOD_NOTEXIST_CODE = 9,
        "The method name corresponding to _mt does not exist or is not registered in the service";
    REQUESTMODE_NOTNULL = 10, "_requestMode parameter cannot be empty";
    APPLICATIONID_NOTNULL = 11, "_aid parameter cannot be empty";
    APPLICATIONID_NOTSAME = 12, "_aid does not match the current key";
    VERSION_NOTNULL = 13, "_version version number cannot be empty";
    TIMESTAMP_NOTNULL = 14, "_timestamp timestamp cannot be empty";
    TIMESTAMP_FORMAT_ERROR = 15, "_timestamp timestamp formatting error";
    TIMESTAMP_OVERTIME = 16, "_timestamp has expired";
    FORMAT_TYPE_NOTEXIST = 17, "_format type does not exist";
    API_CALL_REPEAT = -100, "The interface is called repeatedly";
    API_SYSTEM_CALL_ERROR = -500, "API call failed, system exception occurred";
    UNKNOWN_ERROR = -999, "Open platform system exception";
    TOKEN_NOT_EXIST = 9_990_001, "token does not exist";
    USERNAME_ERROE = 103_094, "user name error";
    PASSWORD_ERROE = 103_095, "password error";
}

fn entry(code: i64) -> Option<&'static (i64, &'static str, &'static str)> {
    CODES.iter().find(|(c, _, _)| *c == code)
}

/// The gateway's name for a return code (`"UNKNOWN"` for one not documented).
pub(crate) fn codename(code: i64) -> &'static str {
    entry(code).map_or("UNKNOWN", |(_, name, _)| name)
}

/// The gateway's description of `code` (`"unknown error"` for one not documented).
pub(crate) fn description(code: i64) -> &'static str {
    entry(code).map_or("unknown error", |(_, _, text)| text)
}

/// A gateway-level refusal: the code and the `result` text it is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) code: i64,
    pub(crate) text: String,
}

impl Refusal {
    /// `code` with the gateway's description of it.
    pub(crate) fn code(code: i64) -> Self {
        Refusal {
            code,
            text: description(code).to_owned(),
        }
    }

    /// -500 API_SYSTEM_CALL_ERROR with `text`: how the gateway refuses bad business parameters.
    pub(crate) fn system(text: impl Into<String>) -> Self {
        Refusal {
            code: API_SYSTEM_CALL_ERROR,
            text: text.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_named_once() {
        let mut codes: Vec<i64> = CODES.iter().map(|(c, _, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), CODES.len());
        assert_eq!(codename(SIGN_WRONG), "SIGN_WRONG");
        assert_eq!(codename(METHOD_NOTEXIST_CODE), "METHOD_NOTEXIST_CODE");
        assert_eq!(codename(TOKEN_NOT_EXIST), "TOKEN_NOT_EXIST");
        assert_eq!(codename(424_242), "UNKNOWN");
        assert_eq!(description(SUCCESS), "success");
        assert_eq!(description(424_242), "unknown error");
        assert_eq!(
            Refusal::code(API_CALL_REPEAT).text,
            "The interface is called repeatedly"
        );
        assert_eq!(Refusal::system("x").code, -500);
    }
}
