//! The story model of SPEC §2: plain data read from and written to repositories.
//! Inputs are validated by the services before a model value is built.

mod admin;
mod chapter;
mod file;
mod job;
mod memory;
mod novel;
mod recall;
mod trusted;
mod validation;

pub use admin::*;
pub use chapter::*;
pub use file::*;
pub use job::*;
pub use memory::*;
pub use novel::*;
pub use recall::*;
pub use trusted::*;
pub use validation::*;

/// Declares a fieldless enum with a stable SCREAMING_CASE storage/wire name per variant.
macro_rules! str_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name { $($(#[$vmeta])* $variant,)* }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
            /// The stable name stored in the database and shown to clients.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
            /// Parses a stored name; `None` for an unknown one.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)* _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use str_enum;
