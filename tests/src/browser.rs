//! A real browser for the web front end's tests: Debian's `chromium`, headless, driven through
//! Debian's `chromedriver` (package `chromium-driver`, installed by scripts/install-deps.sh)
//! with the WebDriver client `thirtyfour` (without its driver-downloading `manager`
//! feature). Nothing here downloads a browser or a driver.
//!
//! [`Browser::start`] runs one chromedriver on a free 127.0.0.1 port and one browser session
//! with a window of the given size; dropping the [`Browser`] ends both. Waits are bounded
//! ([`Browser::wait_for`]), so a page that never shows what a test expects fails the test
//! instead of hanging it. [`decode_qr`] reads a QR code from a screenshot (`rqrr`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use thirtyfour::{By, Capabilities, WebDriver, WebElement};

/// A desktop window.
pub const DESKTOP: (u32, u32) = (1280, 900);
/// A phone-sized window (a common small Android width).
pub const PHONE: (u32, u32) = (390, 844);

/// The Chromium binary (`$TANDEM_CHROMIUM`, else Debian's `/usr/bin/chromium`).
fn chromium() -> String {
    std::env::var("TANDEM_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// The driver (`$TANDEM_CHROMEDRIVER`, else `chromedriver` on the PATH).
fn chromedriver() -> String {
    std::env::var("TANDEM_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One chromedriver process and one headless browser session.
#[derive(Debug)]
pub struct Browser {
    client: Option<WebDriver>,
    driver: Child,
    downloads: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a window of `size` (width, height).
    /// The browser accepts the test server's self-signed certificate (`acceptInsecureCerts`:
    /// the page is still served over HTTPS, so `Secure` cookies behave as in production);
    /// downloads go to [`Browser::downloads`].
    pub async fn start(size: (u32, u32)) -> Result<Self> {
        let port = free_port()?;
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context(
                "cannot start chromedriver (scripts/install-deps.sh installs chromium-driver)",
            )?;
        let downloads = tempfile::tempdir()?;
        let mut browser = None;
        let mut driver = Some(driver);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last_error = String::new();
        while Instant::now() < deadline {
            let mut caps = Capabilities::new();
            caps.set("browserName", "chrome")?;
            caps.set("acceptInsecureCerts", true)?;
            caps.set(
                "goog:chromeOptions",
                json!({
                    "binary": chromium(),
                    "args": [
                        "--headless=new",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-dev-shm-usage",
                        "--no-first-run",
                        "--disable-extensions",
                        "--hide-scrollbars",
                        "--lang=en-US",
                        format!("--window-size={},{}", size.0, size.1),
                    ],
                    "prefs": {
                        "download.default_directory": downloads.path(),
                        "download.prompt_for_download": false,
                        "intl.accept_languages": "en-US,en",
                    },
                }),
            )?;
            match WebDriver::new(format!("http://127.0.0.1:{port}"), caps).await {
                Ok(c) => {
                    browser = Some(c);
                    break;
                }
                Err(e) => {
                    last_error = e.to_string();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        let Some(client) = browser else {
            if let Some(mut d) = driver.take() {
                let _ = d.kill();
                let _ = d.wait();
            }
            bail!("no browser session within 30 s: {last_error}");
        };
        let driver = driver.take().context("driver")?;
        // The window's inner size is what a test's screenshots show.
        client.set_window_rect(0, 0, size.0, size.1).await?;
        Ok(Browser {
            client: Some(client),
            driver,
            downloads,
        })
    }

    /// The WebDriver client, for what the helpers below do not cover.
    pub fn client(&self) -> &WebDriver {
        self.client.as_ref().expect("browser session open")
    }

    /// Ends the browser session and the driver.
    pub async fn quit(mut self) -> Result<()> {
        if let Some(c) = self.client.take() {
            c.quit().await?;
        }
        Ok(())
    }

    /// Where downloads land.
    pub fn downloads(&self) -> &Path {
        self.downloads.path()
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.client()
            .goto(url)
            .await
            .with_context(|| format!("goto {url}"))
    }

    /// The current URL.
    pub async fn url(&self) -> Result<String> {
        Ok(self.client().current_url().await?.to_string())
    }

    /// The first element matching `css`, now.
    pub async fn find(&self, css: &str) -> Result<WebElement> {
        self.client()
            .find(By::Css(css))
            .await
            .with_context(|| format!("no element {css}"))
    }

    /// Waits up to `timeout` for an element matching `css` to exist.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<WebElement> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(e) = self.client().find(By::Css(css)).await {
                return Ok(e);
            }
            if Instant::now() >= deadline {
                let url = self.url().await.unwrap_or_default();
                bail!("no element {css} within {timeout:?} (at {url})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The visible text of the page's body.
    pub async fn body_text(&self) -> Result<String> {
        Ok(self.find("body").await?.text().await?)
    }

    /// Types `text` into the field matching `css` (cleared first).
    pub async fn fill(&self, css: &str, text: &str) -> Result<()> {
        let e = self.find(css).await?;
        e.clear().await?;
        e.send_keys(text).await?;
        Ok(())
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) -> Result<()> {
        self.find(css).await?.click().await?;
        Ok(())
    }

    /// Puts a local file into the `<input type=file>` matching `css`.
    pub async fn upload(&self, css: &str, file: &Path) -> Result<()> {
        let path = file
            .canonicalize()
            .with_context(|| format!("{}", file.display()))?;
        self.find(css)
            .await?
            .send_keys(path.to_string_lossy().as_ref())
            .await?;
        Ok(())
    }

    /// A PNG screenshot of the window.
    pub async fn screenshot(&self) -> Result<Vec<u8>> {
        Ok(self.client().screenshot_as_png().await?)
    }

    /// Saves a screenshot to `path` (for docs/WEB.md).
    pub async fn save_screenshot(&self, path: &Path) -> Result<()> {
        let png = self.screenshot().await?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// For docs/WEB.md: when `$TANDEM_WEB_SCREENSHOTS` names a directory, saves a screenshot
    /// there as `NAME.png` (e.g. `bank-login-desktop`); otherwise does nothing. The pictures
    /// in docs/web/ come from `TANDEM_WEB_SCREENSHOTS=docs/web cargo nextest run ...`.
    pub async fn doc_screenshot(&self, name: &str) -> Result<()> {
        match std::env::var_os("TANDEM_WEB_SCREENSHOTS") {
            Some(dir) => {
                self.save_screenshot(&Path::new(&dir).join(format!("{name}.png")))
                    .await
            }
            None => Ok(()),
        }
    }

    /// Runs `body`, the body of a JavaScript function that may return a promise, in the page
    /// and waits up to `timeout` for its value (JSON). The function gets `args` as its
    /// `arguments`. A rejected promise or a thrown error is an `Err` with its message and
    /// stack. (WebDriver's scripts are not subject to the page's CSP.)
    pub async fn run_js(
        &self,
        body: &str,
        args: Vec<serde_json::Value>,
        timeout: Duration,
    ) -> Result<serde_json::Value> {
        self.client().set_script_timeout(timeout).await?;
        let script = format!(
            "var done = arguments[arguments.length - 1];\n\
             var args = Array.prototype.slice.call(arguments, 0, arguments.length - 1);\n\
             Promise.resolve().then(function () {{ return (function () {{\n{body}\n}}).apply(null, args); }})\n\
             .then(function (v) {{ done({{ ok: v === undefined ? null : v }}); }},\n\
                   function (e) {{ done({{ err: String(e && (e.stack || e.message) || e) }}); }});"
        );
        let ret = self.client().execute_async(script, args).await?;
        let v = ret.json().clone();
        if let Some(e) = v.get("err") {
            bail!("script failed: {}", e.as_str().unwrap_or_default());
        }
        Ok(v.get("ok").cloned().unwrap_or(serde_json::Value::Null))
    }

    /// Loads one of the web process's static scripts (`/static/NAME`) into the current page
    /// (a `<script src>` from our own origin, which the CSP allows), for tests that call its
    /// functions directly.
    pub async fn load_script(&self, name: &str) -> Result<()> {
        self.run_js(
            "return new Promise(function (ok, fail) {\n\
               var s = document.createElement('script');\n\
               s.src = '/static/' + args[0];\n\
               s.onload = function () { ok(true); };\n\
               s.onerror = function () { fail(new Error('cannot load ' + s.src)); };\n\
               document.head.appendChild(s);\n\
             });",
            vec![serde_json::Value::String(name.into())],
            Duration::from_secs(10),
        )
        .await
        .map(|_| ())
    }

    /// Waits up to `timeout` for a download whose name ends with `suffix` to finish
    /// (Chromium writes `*.crdownload` first) and returns its path.
    pub async fn wait_for_download(&self, suffix: &str, timeout: Duration) -> Result<PathBuf> {
        let deadline = Instant::now() + timeout;
        loop {
            for entry in std::fs::read_dir(self.downloads())? {
                let path = entry?.path();
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                if name.is_some_and(|n| n.ends_with(suffix) && !n.ends_with(".crdownload")) {
                    return Ok(path);
                }
            }
            if Instant::now() >= deadline {
                bail!("no download *{suffix} within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Without quit(): the driver takes its browser down with it, and the session's own
        // teardown then finds no driver (and gives up at once).
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Decodes the QR codes in a PNG image (e.g. a screenshot), as a phone's camera would.
pub fn decode_qr(png_bytes: &[u8]) -> Result<Vec<String>> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    // Palette and 1/2/4-bit images (the web front end draws its QR codes in 1 bit) as 8 bit.
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().context("screenshot is not a PNG")?;
    let size = reader
        .output_buffer_size()
        .context("screenshot too large")?;
    let mut buf = vec![0; size];
    let info = reader
        .next_frame(&mut buf)
        .context("cannot decode screenshot")?;
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = match (info.color_type, info.bit_depth) {
        (png::ColorType::Rgba, png::BitDepth::Eight) => 4,
        (png::ColorType::Rgb, png::BitDepth::Eight) => 3,
        (png::ColorType::Grayscale, png::BitDepth::Eight) => 1,
        (png::ColorType::GrayscaleAlpha, png::BitDepth::Eight) => 2,
        other => bail!("unsupported PNG format {other:?}"),
    };
    let stride = info.line_size;
    let luma = |x: usize, y: usize| -> u8 {
        let p = &buf[y * stride + x * channels..];
        match channels {
            1 | 2 => p[0],
            _ => {
                ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000)
                    as u8
            }
        }
    };
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, luma);
    let mut found = Vec::new();
    for grid in img.detect_grids() {
        let (_, content) = grid
            .decode()
            .map_err(|e| anyhow::anyhow!("QR decode: {e:?}"))?;
        found.push(content);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decoder reads what tandem-rp's QR encoder drew (the web page's QR is that PNG).
    #[test]
    fn decodes_a_qr_png() {
        let link = "https://app.tandem.test/device-link?deviceLinkType=QR&elapsedSeconds=3";
        let png = tandem_rp::client::qr::png(link, 6).expect("png");
        assert_eq!(decode_qr(&png).expect("decode"), vec![link.to_string()]);
        let blank = tandem_rp::client::qr::png("x", 1).expect("png");
        assert_ne!(decode_qr(&blank).expect("decode"), vec![link.to_string()]);
    }

    /// The whole chain the login test relies on: Chromium renders a page with a QR image, the
    /// screenshot comes back through chromedriver, and the decoder reads the link from it, in
    /// a desktop and a phone-sized window.
    #[tokio::test]
    async fn chromium_screenshot_of_a_qr_decodes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = "https://app.tandem.test/device-link?deviceLinkType=QR&elapsedSeconds=7";
        std::fs::write(
            dir.path().join("qr.png"),
            tandem_rp::client::qr::png(link, 4).expect("png"),
        )
        .expect("write");
        std::fs::write(
            dir.path().join("page.html"),
            "<!doctype html><title>qr</title><h1 id=t>Scan</h1><img src=qr.png alt=QR>",
        )
        .expect("write");
        for size in [DESKTOP, PHONE] {
            let browser = Browser::start(size).await.expect("browser");
            let url = format!("file://{}", dir.path().join("page.html").display());
            browser.goto(&url).await.expect("goto");
            let title = browser
                .wait_for("#t", Duration::from_secs(10))
                .await
                .expect("heading");
            assert_eq!(title.text().await.expect("text"), "Scan");
            let shot = browser.screenshot().await.expect("screenshot");
            assert_eq!(
                decode_qr(&shot).expect("decode"),
                vec![link.to_string()],
                "{size:?}"
            );
            assert!(
                browser
                    .wait_for("#missing", Duration::from_millis(300))
                    .await
                    .is_err()
            );
            browser.quit().await.expect("quit");
        }
    }
}
