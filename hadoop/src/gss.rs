//! GSSAPI (MIT krb5's `libgssapi_krb5.so.2`), loaded at run time.
//!
//! The binary that `submit` ships runs on every NodeManager of a cluster.
//! Linking GSSAPI would make it fail to start on a simple-auth node without
//! MIT Kerberos installed. So the library is opened (dlopen) only the first
//! time Kerberos is used, and a node without it gets one clear error. This is
//! how hdfs-native loads it too.
//!
//! Only the calls this crate makes are bound: names, credentials (the default
//! cache, `gss_acquire_cred_from` for keytabs), initiator and acceptor
//! contexts, wrap/unwrap, and status text. The C types follow MIT's
//! `gssapi.h` on Linux (no packing pragmas there).

use std::ffi::{c_char, c_int, c_void, CString};
use std::fmt;
use std::ptr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

type OmUint32 = u32;

#[repr(C)]
struct OidDesc {
    length: OmUint32,
    elements: *const c_void,
}

// SAFETY: the OIDs below point at static byte strings that are never written.
unsafe impl Sync for OidDesc {}

#[repr(C)]
struct BufferDesc {
    length: usize,
    value: *mut c_void,
}

impl BufferDesc {
    const EMPTY: BufferDesc = BufferDesc { length: 0, value: ptr::null_mut() };

    fn borrow(bytes: &[u8]) -> BufferDesc {
        BufferDesc { length: bytes.len(), value: bytes.as_ptr() as *mut c_void }
    }
}

#[repr(C)]
struct KeyValueElement {
    key: *const c_char,
    value: *const c_char,
}

#[repr(C)]
struct KeyValueSet {
    count: OmUint32,
    elements: *mut KeyValueElement,
}

/// `GSS_C_NT_HOSTBASED_SERVICE`: `service@host`.
static NT_HOSTBASED_SERVICE: OidDesc =
    OidDesc { length: 10, elements: b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x04".as_ptr().cast() };
/// `GSS_KRB5_NT_PRINCIPAL_NAME`: `primary/instance@REALM`.
static NT_KRB5_PRINCIPAL: OidDesc =
    OidDesc { length: 10, elements: b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01".as_ptr().cast() };
/// The Kerberos 5 mechanism.
static MECH_KRB5: OidDesc = OidDesc { length: 9, elements: b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02".as_ptr().cast() };

const GSS_S_COMPLETE: OmUint32 = 0;
const GSS_S_CONTINUE_NEEDED: OmUint32 = 1;
const GSS_C_INDEFINITE: OmUint32 = 0xffff_ffff;
const GSS_C_GSS_CODE: c_int = 1;
const GSS_C_MECH_CODE: c_int = 2;

/// Context flags.
pub const MUTUAL: OmUint32 = 2;
pub const CONF: OmUint32 = 16;
pub const INTEG: OmUint32 = 32;

/// Routine errors (the major status's bits 16..24).
pub const NO_CRED: u32 = 7;
pub const CREDENTIALS_EXPIRED: u32 = 11;

type Name_ = *mut c_void;
type Cred_ = *mut c_void;
type Ctx_ = *mut c_void;

/// The functions we call, resolved once.
struct Api {
    _lib: libloading::Library,
    import_name: unsafe extern "C" fn(*mut OmUint32, *mut BufferDesc, *const OidDesc, *mut Name_) -> OmUint32,
    release_name: unsafe extern "C" fn(*mut OmUint32, *mut Name_) -> OmUint32,
    display_name: unsafe extern "C" fn(*mut OmUint32, Name_, *mut BufferDesc, *mut *const OidDesc) -> OmUint32,
    acquire_cred: unsafe extern "C" fn(
        *mut OmUint32,
        Name_,
        OmUint32,
        *const c_void,
        c_int,
        *mut Cred_,
        *mut *mut c_void,
        *mut OmUint32,
    ) -> OmUint32,
    acquire_cred_from: unsafe extern "C" fn(
        *mut OmUint32,
        Name_,
        OmUint32,
        *const c_void,
        c_int,
        *const KeyValueSet,
        *mut Cred_,
        *mut *mut c_void,
        *mut OmUint32,
    ) -> OmUint32,
    release_cred: unsafe extern "C" fn(*mut OmUint32, *mut Cred_) -> OmUint32,
    inquire_cred:
        unsafe extern "C" fn(*mut OmUint32, Cred_, *mut Name_, *mut OmUint32, *mut c_int, *mut *mut c_void) -> OmUint32,
    init_sec_context: unsafe extern "C" fn(
        *mut OmUint32,
        Cred_,
        *mut Ctx_,
        Name_,
        *const OidDesc,
        OmUint32,
        OmUint32,
        *const c_void,
        *mut BufferDesc,
        *mut *const OidDesc,
        *mut BufferDesc,
        *mut OmUint32,
        *mut OmUint32,
    ) -> OmUint32,
    accept_sec_context: unsafe extern "C" fn(
        *mut OmUint32,
        *mut Ctx_,
        Cred_,
        *mut BufferDesc,
        *const c_void,
        *mut Name_,
        *mut *const OidDesc,
        *mut BufferDesc,
        *mut OmUint32,
        *mut OmUint32,
        *mut Cred_,
    ) -> OmUint32,
    delete_sec_context: unsafe extern "C" fn(*mut OmUint32, *mut Ctx_, *mut BufferDesc) -> OmUint32,
    wrap: unsafe extern "C" fn(
        *mut OmUint32,
        Ctx_,
        c_int,
        OmUint32,
        *mut BufferDesc,
        *mut c_int,
        *mut BufferDesc,
    ) -> OmUint32,
    unwrap: unsafe extern "C" fn(
        *mut OmUint32,
        Ctx_,
        *mut BufferDesc,
        *mut BufferDesc,
        *mut c_int,
        *mut OmUint32,
    ) -> OmUint32,
    release_buffer: unsafe extern "C" fn(*mut OmUint32, *mut BufferDesc) -> OmUint32,
    display_status: unsafe extern "C" fn(
        *mut OmUint32,
        OmUint32,
        c_int,
        *const OidDesc,
        *mut OmUint32,
        *mut BufferDesc,
    ) -> OmUint32,
}

/// The library's file name (MIT krb5; `krb5-libs` on RHEL, `libgssapi-krb5-2` on Debian).
pub const LIBRARY: &str = "libgssapi_krb5.so.2";

fn api() -> Result<&'static Api, Error> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(load).as_ref().map_err(|detail| Error::Unavailable(detail.clone()))
}

fn load() -> Result<Api, String> {
    // SAFETY: loading MIT's GSSAPI library runs its initialisers, which have no
    // preconditions; every symbol is then bound to the signature gssapi.h declares.
    unsafe {
        let lib = libloading::Library::new(LIBRARY).map_err(|e| e.to_string())?;
        macro_rules! sym {
            ($name:literal) => {
                *lib.get(concat!($name, "\0").as_bytes()).map_err(|e| format!("{}: {e}", $name))?
            };
        }
        Ok(Api {
            import_name: sym!("gss_import_name"),
            release_name: sym!("gss_release_name"),
            display_name: sym!("gss_display_name"),
            acquire_cred: sym!("gss_acquire_cred"),
            acquire_cred_from: sym!("gss_acquire_cred_from"),
            release_cred: sym!("gss_release_cred"),
            inquire_cred: sym!("gss_inquire_cred"),
            init_sec_context: sym!("gss_init_sec_context"),
            accept_sec_context: sym!("gss_accept_sec_context"),
            delete_sec_context: sym!("gss_delete_sec_context"),
            wrap: sym!("gss_wrap"),
            unwrap: sym!("gss_unwrap"),
            release_buffer: sym!("gss_release_buffer"),
            display_status: sym!("gss_display_status"),
            _lib: lib,
        })
    }
}

/// Whether GSSAPI can be loaded on this machine (for `doctor`).
pub fn available() -> Result<(), Error> {
    api().map(|_| ())
}

/// A failed GSSAPI call: its major and minor status, with the library's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The library could not be loaded (not installed on this node).
    Unavailable(String),
    Call {
        major: u32,
        minor: u32,
        message: String,
    },
}

impl Error {
    /// The routine error of the major status (e.g. [`NO_CRED`]).
    pub fn routine(&self) -> u32 {
        match self {
            Error::Call { major, .. } => (major >> 16) & 0xff,
            Error::Unavailable(_) => 0,
        }
    }

    fn from_status(api: &Api, major: OmUint32, minor: OmUint32) -> Error {
        let mut parts = Vec::new();
        for (code, kind) in [(major, GSS_C_GSS_CODE), (minor, GSS_C_MECH_CODE)] {
            if code == 0 {
                continue;
            }
            let mut context: OmUint32 = 0;
            // MIT returns one message per call; a context of 0 afterwards means the last one.
            for _ in 0..8 {
                let (mut m, mut buf) = (0, BufferDesc::EMPTY);
                let mech = if kind == GSS_C_MECH_CODE { &MECH_KRB5 as *const OidDesc } else { ptr::null() };
                // SAFETY: out-pointers are valid; the buffer is released below.
                let rc = unsafe { (api.display_status)(&mut m, code, kind, mech, &mut context, &mut buf) };
                if rc != GSS_S_COMPLETE {
                    break;
                }
                parts.push(
                    take_buffer(api, &mut buf).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default(),
                );
                if context == 0 {
                    break;
                }
            }
        }
        Error::Call { major, minor, message: parts.join(": ") }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unavailable(detail) => write!(
                f,
                "Kerberos needs MIT Kerberos' GSSAPI library ({LIBRARY}), which cannot be loaded on this machine \
                 ({detail}); install it (krb5-libs on RHEL, libgssapi-krb5-2 on Debian)"
            ),
            Error::Call { message, major, minor } if message.is_empty() => {
                write!(f, "GSSAPI error (major {major:#x}, minor {minor})")
            }
            Error::Call { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

/// Copies and releases a GSSAPI-owned buffer.
fn take_buffer(api: &Api, buf: &mut BufferDesc) -> Option<Vec<u8>> {
    let out = if buf.value.is_null() || buf.length == 0 {
        None
    } else {
        // SAFETY: the library filled `buf` with `length` readable bytes.
        Some(unsafe { std::slice::from_raw_parts(buf.value as *const u8, buf.length) }.to_vec())
    };
    let mut m = 0;
    // SAFETY: a buffer the library allocated, released once.
    unsafe { (api.release_buffer)(&mut m, buf) };
    out
}

fn check(api: &Api, major: OmUint32, minor: OmUint32) -> Result<(), Error> {
    if major & 0xffff_0000 != 0 {
        return Err(Error::from_status(api, major, minor));
    }
    Ok(())
}

/// A GSSAPI name.
pub struct Name(Name_);

// SAFETY: a name is an immutable value once imported.
unsafe impl Send for Name {}

/// How a name is written.
#[derive(Clone, Copy, Debug)]
pub enum NameType {
    /// `service@host`.
    HostBasedService,
    /// `primary/instance@REALM`.
    KerberosPrincipal,
}

impl Name {
    pub fn new(text: &str, kind: NameType) -> Result<Name, Error> {
        let api = api()?;
        let oid: &OidDesc = match kind {
            NameType::HostBasedService => &NT_HOSTBASED_SERVICE,
            NameType::KerberosPrincipal => &NT_KRB5_PRINCIPAL,
        };
        let mut buf = BufferDesc::borrow(text.as_bytes());
        let (mut minor, mut name) = (0, ptr::null_mut());
        // SAFETY: `buf` borrows `text` for the call; `name` receives a new name we own.
        let major = unsafe { (api.import_name)(&mut minor, &mut buf, oid, &mut name) };
        check(api, major, minor)?;
        Ok(Name(name))
    }

    fn display(api: &Api, name: Name_) -> Result<String, Error> {
        let (mut minor, mut buf) = (0, BufferDesc::EMPTY);
        // SAFETY: `name` is a valid name; the buffer is released by take_buffer.
        let major = unsafe { (api.display_name)(&mut minor, name, &mut buf, ptr::null_mut()) };
        check(api, major, minor)?;
        Ok(take_buffer(api, &mut buf).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default())
    }
}

impl Drop for Name {
    fn drop(&mut self) {
        if let (Ok(api), false) = (api(), self.0.is_null()) {
            let mut m = 0;
            // SAFETY: a name we own, released once.
            unsafe { (api.release_name)(&mut m, &mut self.0) };
        }
    }
}

/// What a credential is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredUsage {
    Initiate,
    Accept,
}

struct CredHandle(Cred_);

// SAFETY: MIT credentials may be used from any thread; contexts made from them are separate.
unsafe impl Send for CredHandle {}
unsafe impl Sync for CredHandle {}

impl Drop for CredHandle {
    fn drop(&mut self) {
        if let (Ok(api), false) = (api(), self.0.is_null()) {
            let mut m = 0;
            // SAFETY: a credential we own, released once (the last clone drops it).
            unsafe { (api.release_cred)(&mut m, &mut self.0) };
        }
    }
}

/// A credential (cheap to clone: shared).
#[derive(Clone)]
pub struct Cred(Arc<CredHandle>);

impl Cred {
    /// The default credentials for `usage` (the default ticket cache for initiators).
    pub fn acquire_default(usage: CredUsage) -> Result<Cred, Error> {
        let api = api()?;
        let (mut minor, mut cred) = (0, ptr::null_mut());
        // SAFETY: null name and mechs mean the defaults; `cred` receives a credential we own.
        let major = unsafe {
            (api.acquire_cred)(
                &mut minor,
                ptr::null_mut(),
                GSS_C_INDEFINITE,
                ptr::null(),
                usage_code(usage),
                &mut cred,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        check(api, major, minor)?;
        Ok(Cred(Arc::new(CredHandle(cred))))
    }

    /// `gss_acquire_cred_from`: credentials from an explicit store (`ccache`,
    /// `client_keytab`, `keytab`, as MIT documents), for `principal` or the
    /// store's default.
    pub fn acquire_from(principal: Option<&str>, usage: CredUsage, store: &[(&str, &str)]) -> Result<Cred, Error> {
        let api = api()?;
        let owned: Vec<(CString, CString)> = store
            .iter()
            .map(|(k, v)| Ok((CString::new(*k)?, CString::new(*v)?)))
            .collect::<Result<_, std::ffi::NulError>>()
            .map_err(|e| Error::Call { major: 0, minor: 0, message: format!("bad credential store entry: {e}") })?;
        let mut elements: Vec<KeyValueElement> =
            owned.iter().map(|(k, v)| KeyValueElement { key: k.as_ptr(), value: v.as_ptr() }).collect();
        let set = KeyValueSet { count: elements.len() as OmUint32, elements: elements.as_mut_ptr() };
        let name = principal.map(|p| Name::new(p, NameType::KerberosPrincipal)).transpose()?;
        let (mut minor, mut cred) = (0, ptr::null_mut());
        // SAFETY: `set` borrows `elements`, which borrow `owned`, for the call.
        let major = unsafe {
            (api.acquire_cred_from)(
                &mut minor,
                name.as_ref().map_or(ptr::null_mut(), |n| n.0),
                GSS_C_INDEFINITE,
                ptr::null(),
                usage_code(usage),
                &set,
                &mut cred,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        check(api, major, minor)?;
        Ok(Cred(Arc::new(CredHandle(cred))))
    }

    /// The principal and remaining lifetime. Asking makes MIT fetch a
    /// keytab's initial ticket now, so a stale keytab fails here.
    pub fn inquire(&self) -> Result<(String, Duration), Error> {
        let api = api()?;
        let (mut minor, mut name, mut lifetime) = (0, ptr::null_mut(), 0);
        // SAFETY: out-pointers are valid; the name is released by the Name guard.
        let major = unsafe {
            (api.inquire_cred)(&mut minor, self.0 .0, &mut name, &mut lifetime, ptr::null_mut(), ptr::null_mut())
        };
        check(api, major, minor)?;
        let name = Name(name);
        let text = Name::display(api, name.0)?;
        let lifetime = if lifetime == GSS_C_INDEFINITE { Duration::MAX } else { Duration::from_secs(lifetime.into()) };
        Ok((text, lifetime))
    }
}

fn usage_code(usage: CredUsage) -> c_int {
    match usage {
        CredUsage::Initiate => 1,
        CredUsage::Accept => 2,
    }
}

struct CtxHandle(Ctx_);

// SAFETY: a context is used by one owner at a time (`&mut self` methods).
unsafe impl Send for CtxHandle {}

impl Drop for CtxHandle {
    fn drop(&mut self) {
        if let (Ok(api), false) = (api(), self.0.is_null()) {
            let mut m = 0;
            // SAFETY: a context we own, deleted once; no output token wanted.
            unsafe { (api.delete_sec_context)(&mut m, &mut self.0, ptr::null_mut()) };
        }
    }
}

/// The initiator side of a Kerberos security context.
pub struct ClientCtx {
    ctx: CtxHandle,
    cred: Option<Cred>,
    target: Name,
    flags: OmUint32,
    complete: bool,
}

impl ClientCtx {
    pub fn new(cred: Option<Cred>, target: Name, flags: OmUint32) -> ClientCtx {
        ClientCtx { ctx: CtxHandle(ptr::null_mut()), cred, target, flags, complete: false }
    }

    /// One round: the token to send, if any.
    pub fn step(&mut self, input: Option<&[u8]>) -> Result<Option<Vec<u8>>, Error> {
        let api = api()?;
        let mut input_buf = input.map(BufferDesc::borrow);
        let (mut minor, mut out) = (0, BufferDesc::EMPTY);
        let cred = self.cred.as_ref().map_or(ptr::null_mut(), |c| c.0 .0);
        // SAFETY: every pointer is valid for the call; the output buffer is released by take_buffer.
        let major = unsafe {
            (api.init_sec_context)(
                &mut minor,
                cred,
                &mut self.ctx.0,
                self.target.0,
                &MECH_KRB5,
                self.flags,
                0,
                ptr::null(),
                input_buf.as_mut().map_or(ptr::null_mut(), |b| b as *mut BufferDesc),
                ptr::null_mut(),
                &mut out,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        let token = take_buffer(api, &mut out);
        check(api, major, minor)?;
        self.complete = major & GSS_S_CONTINUE_NEEDED == 0;
        Ok(token)
    }

    pub fn is_complete(&self) -> bool {
        self.complete
    }

    pub fn wrap(&mut self, encrypt: bool, data: &[u8]) -> Result<Vec<u8>, Error> {
        wrap(&self.ctx, encrypt, data)
    }

    pub fn unwrap(&mut self, data: &[u8]) -> Result<Vec<u8>, Error> {
        unwrap(&self.ctx, data)
    }
}

/// The acceptor side (servers; the tests' KDC-backed doubles use it).
pub struct ServerCtx {
    ctx: CtxHandle,
    cred: Option<Cred>,
    complete: bool,
    source: Option<String>,
}

impl ServerCtx {
    pub fn new(cred: Option<Cred>) -> ServerCtx {
        ServerCtx { ctx: CtxHandle(ptr::null_mut()), cred, complete: false, source: None }
    }

    /// One round: the token to send back, if any.
    pub fn step(&mut self, input: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let api = api()?;
        let mut input_buf = BufferDesc::borrow(input);
        let (mut minor, mut out, mut src) = (0, BufferDesc::EMPTY, ptr::null_mut());
        let cred = self.cred.as_ref().map_or(ptr::null_mut(), |c| c.0 .0);
        // SAFETY: every pointer is valid for the call; outputs are released below.
        let major = unsafe {
            (api.accept_sec_context)(
                &mut minor,
                &mut self.ctx.0,
                cred,
                &mut input_buf,
                ptr::null(),
                &mut src,
                ptr::null_mut(),
                &mut out,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        let token = take_buffer(api, &mut out);
        let src = Name(src);
        check(api, major, minor)?;
        self.complete = major & GSS_S_CONTINUE_NEEDED == 0;
        if self.complete && !src.0.is_null() {
            self.source = Some(Name::display(api, src.0)?);
        }
        Ok(token)
    }

    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// The authenticated client, once complete.
    pub fn source_name(&self) -> Option<&str> {
        self.source.as_deref()
    }

    pub fn wrap(&mut self, encrypt: bool, data: &[u8]) -> Result<Vec<u8>, Error> {
        wrap(&self.ctx, encrypt, data)
    }

    pub fn unwrap(&mut self, data: &[u8]) -> Result<Vec<u8>, Error> {
        unwrap(&self.ctx, data)
    }
}

fn wrap(ctx: &CtxHandle, encrypt: bool, data: &[u8]) -> Result<Vec<u8>, Error> {
    let api = api()?;
    let mut input = BufferDesc::borrow(data);
    let (mut minor, mut out) = (0, BufferDesc::EMPTY);
    // SAFETY: a complete context; the output buffer is released by take_buffer.
    let major =
        unsafe { (api.wrap)(&mut minor, ctx.0, c_int::from(encrypt), 0, &mut input, ptr::null_mut(), &mut out) };
    let token = take_buffer(api, &mut out);
    check(api, major, minor)?;
    Ok(token.unwrap_or_default())
}

fn unwrap(ctx: &CtxHandle, data: &[u8]) -> Result<Vec<u8>, Error> {
    let api = api()?;
    let mut input = BufferDesc::borrow(data);
    let (mut minor, mut out) = (0, BufferDesc::EMPTY);
    // SAFETY: a complete context; the output buffer is released by take_buffer.
    let major = unsafe { (api.unwrap)(&mut minor, ctx.0, &mut input, &mut out, ptr::null_mut(), ptr::null_mut()) };
    let data = take_buffer(api, &mut out);
    check(api, major, minor)?;
    Ok(data.unwrap_or_default())
}
