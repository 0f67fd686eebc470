//! The macro behind [`super::families`]: from one list of hourly values it writes the struct
//! that holds them (one `Option<f64>` field each) and the table of their families, so that a
//! value cannot be decoded without being published, nor published without a field.

/// Declares a struct of hourly (or daily) values and its families: one family per field,
/// named `<prefix><field>`, plus `<prefix><stamp>` (`hour_timestamp_seconds`,
/// `day_timestamp_seconds`) for the hour or day the values describe.
///
/// ```text
/// hourly_values! {
///     /// Docs of the struct.
///     pub struct ShopValues, families SHOP_FAMILIES, labels SHOP_LABELS, prefix "opretail_shop_";
///     hour_timestamp_seconds: "HELP of the hour's timestamp";
///     walk_in: Count, "HELP of the value";
/// }
/// ```
///
/// The HELP text of a value is followed by the writer's hour and source, that of the hour's
/// timestamp by the source only (see [`super::Ending`]); with `, ending Complete, stamp
/// Complete` after the prefix, the HELP texts are complete as declared (daily figures, which only the
/// live exporter shows).
macro_rules! hourly_values {
    (
        $(#[$doc:meta])*
        pub struct $Values:ident, families $FAMILIES:ident, labels $LABELS:ident, prefix $prefix:literal;
        $stamp:ident: $hour_help:literal;
        $( $field:ident: $unit:ident, $help:literal; )+
    ) => {
        hourly_values! {
            $(#[$doc])*
            pub struct $Values, families $FAMILIES, labels $LABELS, prefix $prefix, ending HourAndSource, stamp Source;
            $stamp: $hour_help;
            $( $field: $unit, $help; )+
        }
    };
    (
        $(#[$doc:meta])*
        pub struct $Values:ident, families $FAMILIES:ident, labels $LABELS:ident, prefix $prefix:literal, ending $ending:ident, stamp $stamp_ending:ident;
        $stamp:ident: $hour_help:literal;
        $( $field:ident: $unit:ident, $help:literal; )+
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Default)]
        pub struct $Values {
            $(
                #[doc = concat!("`", $prefix, stringify!($field), "`: ", $help)]
                pub $field: Option<f64>,
            )+
        }

        impl $Values {
            /// Every value set to `value`, so that every family has a sample.
            pub fn every(value: f64) -> Self {
                Self {
                    $( $field: Some(value), )+
                }
            }

            /// Sets the value whose family's short name is `key`; false if there is none.
            pub fn set(&mut self, key: &str, value: Option<f64>) -> bool {
                match key {
                    $( stringify!($field) => self.$field = value, )+
                    _ => return false,
                }
                true
            }
        }

        /// Every family of these values, the hour's timestamp last (backfill's order).
        pub(crate) static $FAMILIES: &[$crate::schema::Family<$Values>] = &[
            $(
                $crate::schema::Family {
                    name: concat!($prefix, stringify!($field)),
                    key: stringify!($field),
                    help: $help,
                    ending: $crate::schema::Ending::$ending,
                    kind: $crate::schema::Kind::Gauge,
                    labels: &$LABELS,
                    unit: $crate::schema::Unit::$unit,
                    read: $crate::schema::Read::Value(|v: &$Values| v.$field),
                },
            )+
            $crate::schema::Family {
                name: concat!($prefix, stringify!($stamp)),
                key: stringify!($stamp),
                help: $hour_help,
                ending: $crate::schema::Ending::$stamp_ending,
                kind: $crate::schema::Kind::Gauge,
                labels: &$LABELS,
                unit: $crate::schema::Unit::Seconds,
                read: $crate::schema::Read::HourStart,
            },
        ];
    };
}
