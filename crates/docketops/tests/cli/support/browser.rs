//! A real browser for the dashboard's tests: headless Chromium (Debian's `chromium`) driven over WebDriver
//! (`chromedriver`), screenshots kept in `target/test-artifacts/dashboard/`, and the steps every browser test
//! takes (sign in, wait for text, check labels).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// chromedriver on a free port, stopped when dropped.
pub(crate) struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    pub(crate) async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver must be installed (Debian's chromium-driver; scripts/test installs it)");
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if reqwest::get(format!("{url}/status")).await.is_ok() {
                return Driver { child, url };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("chromedriver did not start on port {port}");
    }

    pub(crate) async fn browser(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"binary": "/usr/bin/chromium",
                   "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                            "--window-size=1280,1000"]}),
        );
        // The WebDriver client's TLS stack brings a second crypto provider: name one.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        ClientBuilder::rustls()
            .unwrap()
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a headless Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts/dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub(crate) async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(artifacts().join(format!("{name}.png")), png).unwrap();
}

/// The text of the element `css`, waiting for it to appear (a click's navigation may still be loading).
pub(crate) async fn text_of(browser: &Client, css: &str) -> String {
    match browser
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(element) => element.text().await.unwrap(),
        Err(error) => {
            let url = browser.current_url().await.map(|u| u.to_string()).unwrap_or_default();
            let source = browser.source().await.unwrap_or_default();
            panic!("no {css} on {url} ({error}):\n{source}")
        }
    }
}

/// Waits until the page's body text contains `needle` (the page may reload itself meanwhile).
pub(crate) async fn wait_for_text(browser: &Client, needle: &str, seconds: u64) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        let body = match browser.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if body.contains(needle) {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page never showed {needle:?}; it shows:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub(crate) async fn sign_in(browser: &Client, base: &str, key: &str) {
    browser.goto(&format!("{base}/login")).await.unwrap();
    let field = browser.find(Locator::Css("#api_key")).await.unwrap();
    field.send_keys(key).await.unwrap();
    browser
        .find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Every visible form control on the page has a label (the accessibility rule the dashboard keeps).
pub(crate) async fn assert_controls_are_labelled(browser: &Client, page: &str) {
    let unlabelled = browser
        .execute(
            "return Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))\
               .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.name || e.id);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(unlabelled, json!([]), "unlabelled controls on {page}");
}
