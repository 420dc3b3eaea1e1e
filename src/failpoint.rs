//! Pauses that tests put at race windows, so a race the hunter found once in 10⁵ requests is
//! replayed on every run of its regression test.
//!
//! `GRAPHWARD_FAILPOINTS=name=ms[,name=ms…]` makes [`pause`] at `name` sleep `ms` milliseconds.
//! Only debug builds read it (the test suite runs the debug binary); in a release build
//! [`pause`] is empty and the variable is ignored.

/// Sleeps here if the failpoint `name` is set (debug builds only).
pub async fn pause(name: &str) {
    #[cfg(debug_assertions)]
    if let Some(delay) = configured().iter().find(|(point, _)| point == name).map(|(_, delay)| *delay) {
        tokio::time::sleep(delay).await;
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

#[cfg(debug_assertions)]
fn configured() -> &'static [(String, std::time::Duration)] {
    static POINTS: std::sync::OnceLock<Vec<(String, std::time::Duration)>> = std::sync::OnceLock::new();
    POINTS.get_or_init(|| parse(&std::env::var("GRAPHWARD_FAILPOINTS").unwrap_or_default()))
}

#[cfg(debug_assertions)]
fn parse(spec: &str) -> Vec<(String, std::time::Duration)> {
    spec.split(',')
        .filter_map(|entry| entry.split_once('='))
        .filter_map(|(name, millis)| Some((name.trim().to_string(), std::time::Duration::from_millis(millis.trim().parse().ok()?))))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn points_are_name_equals_milliseconds() {
        assert_eq!(super::parse("run-stored=1500, other=3,broken=x,=4"), vec![
            ("run-stored".to_string(), Duration::from_millis(1500)),
            ("other".to_string(), Duration::from_millis(3)),
            (String::new(), Duration::from_millis(4)),
        ]);
        assert!(super::parse("").is_empty());
    }
}
