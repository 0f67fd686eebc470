//! [`section!`]: a section of the configuration file declared once, one line per key. From
//! that line come the struct field and its doc, the key's place in the list of allowed keys
//! (the "unknown key (expected one of …)" message and the documentation test), the code that
//! reads and checks it, and its default. Adding a key is adding a line; nothing else can forget
//! it.
//!
//! The reading is done by a [`super::walk::Walker`], which records every problem and goes on,
//! so a section reads all its keys, in declaration order, before it gives up.

/// Declares a configuration section.
///
/// ```text
/// section! {
///     /// Doc of the struct.
///     #[derive(Debug, Clone)]
///     pub struct Name, constructor with_defaults {
///         /// Doc of the field.
///         key: Type = required(reader),
///         key: Type = default(expr, reader),
///         key: Option<Type> = optional(reader),
///         field: Type = custom(["key", "other_key"], compound_reader),
///         field: Type = custom(["key", "other_key"], expr, compound_reader),
///     }
///     check(field, field) with function;
/// }
/// ```
///
/// - `required`: the key must be given; `reader(&mut Walker, path, &Value) -> Option<Type>`.
/// - `default`: `expr` when the key is absent or null, else `reader` as above.
/// - `optional`: `None` when absent or null, else `reader` as above (returning the inner type).
/// - `custom`: a field read from several keys at once by
///   `compound_reader(&mut Walker, &Fields, parent) -> Option<Type>`, optionally with a default.
///
/// Generates the struct (every field `pub`), `Name::keys()` (every key, in order),
/// `Name::read(&mut Walker, path, &Value) -> Option<Name>` (the value must be a mapping of those
/// keys), and with `constructor name`, `Name::name(..)` taking the fields that have no default,
/// in order, and filling in every default. `check` runs
/// `function(&mut Walker, path, &Option<_>, ..)` on the named fields after all are read and
/// before the struct is built (`path` is the section's); `false` rejects it.
macro_rules! section {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident $(, constructor $new:ident)? {
            $(
                $(#[$fattr:meta])*
                $field:ident: $ty:ty = $kind:ident($($how:tt)*),
            )*
        }
        $(check($($checked:ident),+) with $check:path;)?
    ) => {
        $(#[$attr])*
        $vis struct $name {
            $( $(#[$fattr])* pub $field: $ty, )*
        }

        impl $name {
            /// Every key of this section, in declaration order.
            pub(in crate::config) fn keys() -> Vec<&'static str> {
                let mut keys: Vec<&'static str> = Vec::new();
                $( keys.extend_from_slice($crate::config::declare::section!(@keys $field $kind($($how)*))); )*
                keys
            }

            /// Reads the section at `path`, recording every problem in `walker`.
            pub(in crate::config) fn read(
                walker: &mut $crate::config::walk::Walker<'_>,
                path: &str,
                value: &::serde_yaml::Value,
            ) -> Option<Self> {
                let fields = walker.mapping(path, value, &Self::keys())?;
                $( let $field: Option<$ty> =
                    $crate::config::declare::section!(@read walker, &fields, path, $field $kind($($how)*)); )*
                $( if !$check(walker, path, $(&$checked),+) {
                    return None;
                } )?
                Some(Self { $( $field: $field?, )* })
            }
        }

        $crate::config::declare::section!(@new $name [$($new)?] $( $field: $ty = $kind($($how)*), )*);
    };

    // The keys of one field.
    (@keys $field:ident custom([$($key:literal),+ $(,)?] $($rest:tt)*)) => { &[$($key),+] };
    (@keys $field:ident $kind:ident($($how:tt)*)) => { &[stringify!($field)] };

    // Reading one field.
    (@read $w:ident, $f:expr, $path:ident, $field:ident required($reader:expr)) => {
        $w.required($f, $path, stringify!($field), $reader)
    };
    (@read $w:ident, $f:expr, $path:ident, $field:ident default($default:expr, $reader:expr)) => {
        $w.optional($f, $path, stringify!($field), $default, $reader)
    };
    (@read $w:ident, $f:expr, $path:ident, $field:ident optional($reader:expr)) => {
        $w.maybe($f, $path, stringify!($field), $reader)
    };
    (@read $w:ident, $f:expr, $path:ident, $field:ident custom([$($key:literal),+], $default:expr, $reader:expr)) => {
        $w.compound($f, $path, $reader)
    };
    (@read $w:ident, $f:expr, $path:ident, $field:ident custom([$($key:literal),+], $reader:expr)) => {
        $w.compound($f, $path, $reader)
    };

    // The constructor: fields without a default become its parameters, in order.
    (@new $name:ident [] $($fields:tt)*) => {};
    (@new $name:ident [$new:ident] $($fields:tt)*) => {
        $crate::config::declare::section!(@ctor $name $new [] [] $($fields)*);
    };
    (@ctor $name:ident $new:ident [$($param:tt)*] [$($init:tt)*]) => {
        impl $name {
            /// Every key with a default at its default; the others as given.
            pub(in crate::config) fn $new($($param)*) -> Self {
                Self { $($init)* }
            }
        }
    };
    (@ctor $name:ident $new:ident [$($param:tt)*] [$($init:tt)*]
        $field:ident: $ty:ty = required($($how:tt)*), $($rest:tt)*) => {
        $crate::config::declare::section!(@ctor $name $new [$($param)* $field: $ty,] [$($init)* $field,] $($rest)*);
    };
    (@ctor $name:ident $new:ident [$($param:tt)*] [$($init:tt)*]
        $field:ident: $ty:ty = default($default:expr, $reader:expr), $($rest:tt)*) => {
        $crate::config::declare::section!(@ctor $name $new [$($param)*] [$($init)* $field: $default,] $($rest)*);
    };
    (@ctor $name:ident $new:ident [$($param:tt)*] [$($init:tt)*]
        $field:ident: $ty:ty = optional($($how:tt)*), $($rest:tt)*) => {
        $crate::config::declare::section!(@ctor $name $new [$($param)*] [$($init)* $field: None,] $($rest)*);
    };
    (@ctor $name:ident $new:ident [$($param:tt)*] [$($init:tt)*]
        $field:ident: $ty:ty = custom([$($key:literal),+], $default:expr, $reader:expr), $($rest:tt)*) => {
        $crate::config::declare::section!(@ctor $name $new [$($param)*] [$($init)* $field: $default,] $($rest)*);
    };
    (@ctor $name:ident $new:ident [$($param:tt)*] [$($init:tt)*]
        $field:ident: $ty:ty = custom([$($key:literal),+], $reader:expr), $($rest:tt)*) => {
        $crate::config::declare::section!(@ctor $name $new [$($param)* $field: $ty,] [$($init)* $field,] $($rest)*);
    };
}

pub(super) use section;
