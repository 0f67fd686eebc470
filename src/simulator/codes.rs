//! The gateway's return codes as the simulator answers them: the number, the name it puts in
//! `stat.codename` and the text it puts in `result`, from the vendor's method pages plus the
//! codes seen live (FACTS.md; the misspelt `…_ERROE` names are the gateway's). The simulator
//! keeps its own table instead of the client's, so that a code the client names or reads
//! wrongly shows up as a disagreement rather than agreeing with itself. Two codes are the
//! simulator's own stand-ins, not the vendor's: [`PARAM_TOO_LONG`] and [`DATA_TOO_LARGE`],
//! answered for the limits a tenant can switch on (`max_id_chars`, `max_answer_bytes`), which
//! the vendor neither documents nor gives a code for. [`Refusal`] is a request the gateway
//! turns down: a code and its `result` text.

/// Defines each code once: a constant named as the gateway names the code (its `codename`),
/// and its row in `CODES` with the `result` text.
macro_rules! gateway_codes {
    ($($(#[$doc:meta])* $name:ident = $code:literal, $text:literal;)*) => {
        $($(#[$doc])* pub const $name: i64 = $code;)*

        /// Every code the simulator answers (the gateway's and the two stand-ins):
        /// (code, `codename`, `result` text).
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
    /// The simulator's stand-in, **not a vendor code**: the shops method's `id` is longer
    /// than the tenant's `max_id_chars`. The vendor gives `id` a maximum length of 100 but no
    /// code for exceeding it. Not one of the codes a client retries (-100, -500, -999, 16).
    PARAM_TOO_LONG = 400_001, "id is longer than the gateway accepts";
    /// The simulator's stand-in, **not a vendor code**: the shops method's answer would be
    /// larger than the tenant's `max_answer_bytes`. The vendor documents no size limit and no
    /// code for one. Not one of the codes a client retries (-100, -500, -999, 16).
    DATA_TOO_LARGE = 400_002, "the answer is larger than the gateway sends";
    /// The simulator's stand-in, **not a vendor code**: answered for a call naming an id (or
    /// mac) the simulator was told to fail ([`super::Simulator::set_target_fault`], the
    /// demo's `--demo.failing-shop`). The vendor does not document what it answers for an id
    /// the key may not read. Not one of the codes a client retries, nor a refusal of the key:
    /// a client asks the other ids of such a call again without it.
    ID_NOT_ALLOWED = 400_003, "the key may not read this id";
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

    #[test]
    fn the_stand_ins_are_named_and_not_retried_codes() {
        assert_eq!((PARAM_TOO_LONG, DATA_TOO_LARGE), (400_001, 400_002));
        assert_eq!(codename(PARAM_TOO_LONG), "PARAM_TOO_LONG");
        assert_eq!(codename(DATA_TOO_LARGE), "DATA_TOO_LARGE");
        assert_eq!(description(PARAM_TOO_LONG), "id is longer than the gateway accepts");
        assert_eq!(
            description(DATA_TOO_LARGE),
            "the answer is larger than the gateway sends"
        );
        let transient = [
            API_CALL_REPEAT,
            API_SYSTEM_CALL_ERROR,
            UNKNOWN_ERROR,
            TIMESTAMP_OVERTIME,
        ];
        assert_eq!(transient, [-100, -500, -999, 16]);
        for code in [PARAM_TOO_LONG, DATA_TOO_LARGE] {
            assert!(!transient.contains(&code), "{code}");
        }
    }
}
