//! The load-time [`Config`] global, and reading it: `conf!` for a field,
//! `off!` for a kernel struct offset.

use core::mem::MaybeUninit;

use pidns_ebpf::Config;

/// The load-time [`Config`], which user space writes into the object before
/// loading it. Fields are read one at a time through a volatile load, so the
/// compiler neither folds in the zeroes it was built with nor copies the
/// whole struct onto the stack.
#[repr(transparent)]
pub struct Settings(pub MaybeUninit<Config>);

// SAFETY: read-only after load.
unsafe impl Sync for Settings {}

#[unsafe(no_mangle)]
pub static CONFIG: Settings = Settings(MaybeUninit::new(Config::ZERO));

/// One field of [`CONFIG`].
macro_rules! conf {
    ($($field:ident).+) => {{
        // SAFETY: CONFIG is always initialised; the read is of plain data.
        #[allow(unused_unsafe)]
        let value = unsafe {
            ::core::ptr::read_volatile(::core::ptr::addr_of!(
                (*$crate::config::CONFIG.0.as_ptr()).$($field).+
            ))
        };
        value
    }};
}

/// One kernel struct offset.
macro_rules! off {
    ($field:ident) => {
        $crate::config::conf!(offsets.$field)
    };
}

pub(crate) use {conf, off};
