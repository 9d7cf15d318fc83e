//! What a NodeManager does to a launch context's environment values and
//! command before a container runs (Hadoop 3.3.6, DefaultContainerExecutor;
//! `shared/wire/hadoop-3.3.6/nm/`): it expands `<LOG_DIR>`, `<CPS>`, turns
//! `{{` into `$` and drops `}}`, then writes `export NAME="VALUE"` into
//! `launch_container.sh` *without escaping anything*, so bash interprets
//! `"`, `$`, backquotes and `\` in the value.
//!
//! A value survives that unchanged only if it holds none of those. Every
//! value we put into a launch context is checked here first, so structured
//! data is never passed in a form the NodeManager mangles.

/// Why a value would not reach the container as written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the value of {name} would be changed by the NodeManager's launch script ({why}); \
     YARN writes environment values into bash as export {name}=\"VALUE\" without escaping"
)]
pub struct UnsafeEnvValue {
    pub name: String,
    pub why: &'static str,
}

/// Checks that `value` reaches the container's `NAME` unchanged.
/// `<LOG_DIR>` and `<CPS>` are allowed: they are expansions asked for on purpose.
pub fn check(name: &str, value: &str) -> Result<(), UnsafeEnvValue> {
    let fail = |why| Err(UnsafeEnvValue { name: name.to_owned(), why });
    if value.contains("{{") {
        return fail("`{{` becomes `$`");
    }
    if value.contains("}}") {
        return fail("`}}` is removed");
    }
    for (c, why) in [
        ('"', "a double quote ends the quoted value"),
        ('$', "`$` starts a shell expansion"),
        ('`', "a backquote starts a command substitution"),
        ('\\', "a backslash escapes the next character"),
        ('\n', "a newline ends the export line"),
        ('\0', "a NUL byte cannot be in an environment value"),
    ] {
        if value.contains(c) {
            return fail(why);
        }
    }
    Ok(())
}

/// Checks every entry of an environment (see [`check`]).
pub fn check_all<'a>(env: impl IntoIterator<Item = (&'a String, &'a String)>) -> Result<(), UnsafeEnvValue> {
    env.into_iter().try_for_each(|(k, v)| check(k, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_shell_syntax_are_refused_plain_values_pass() {
        // What the real NodeManager mangled (nm/am-launch_container.sh, nm/tm-launch_container.sh).
        for bad in [r#"{"bundle":{"url":"hdfs://x"}}"#, "{{JAVA_HOME}}", "a$b", "`id`", r"C:\x", "a\nb"] {
            assert!(check("YF_X", bad).is_err(), "{bad}");
        }
        let err = check("YF_LOCAL_RESOURCES", r#"{"a":1}"#).unwrap_err().to_string();
        assert!(err.contains("YF_LOCAL_RESOURCES") && err.contains("double quote"), "{err}");
        for good in ["hdfs://127.0.0.1:9000/user/a", "cpu_millis=1000,task_heap_bytes=1", "<LOG_DIR>/x", "a b", ""] {
            assert_eq!(check("YF_X", good), Ok(()), "{good}");
        }
    }
}
