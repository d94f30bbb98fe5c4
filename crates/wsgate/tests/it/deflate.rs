//! permessage-deflate is negotiated end to end: python `websockets` on both
//! sides, with compression on, talk through the gateway, which relays the
//! compressed frames (RSV1 set) without understanding them.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::harness::process::tool;
use crate::harness::{STEP, api, gateway, within};

/// An echo server with compression on; prints its port, then serves until killed.
const SERVER: &str = r#"
import asyncio
from websockets.asyncio.server import serve

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    async with serve(echo, "127.0.0.1", 0, compression="deflate") as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

asyncio.run(main())
"#;

/// Connects to argv[1] with compression on, sends 10 KB of compressible text,
/// and reports what it negotiated and whether the echo matched.
const CLIENT: &str = r#"
import asyncio, sys
from websockets.asyncio.client import connect

async def main(url):
    async with connect(url, compression="deflate", open_timeout=5) as ws:
        print("header:", ws.response.headers.get("Sec-WebSocket-Extensions", ""), flush=True)
        print("negotiated:", ",".join(e.name for e in ws.protocol.extensions), flush=True)
        text = ("wsgate relays compressed frames unchanged. " * 300)[:10240]
        await ws.send(text)
        reply = await asyncio.wait_for(ws.recv(), 5)
        print("roundtrip:", "ok" if reply == text else "mismatch", flush=True)

asyncio.run(main(sys.argv[1]))
"#;

#[tokio::test]
async fn permessage_deflate_is_negotiated_end_to_end() {
    let python = tool("WSGATE_PYTHON", "python3");
    let probe = Command::new(&python).args(["-c", "import websockets"]).kill_on_drop(true).output();
    let probe = within(Duration::from_secs(20), "python imports websockets", probe).await.expect("python runs");
    assert!(
        probe.status.success(),
        "{} has no `websockets` module; run ./scripts/test, which installs it and sets WSGATE_PYTHON",
        python.display()
    );

    let mut server = Command::new(&python)
        .args(["-c", SERVER])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the python echo server starts");
    let mut server_out = BufReader::new(server.stdout.take().expect("stdout is piped"));
    let mut port = String::new();
    within(STEP, "the python echo server prints its port", server_out.read_line(&mut port))
        .await
        .expect("the port line is readable");
    let port: u16 = port.trim().parse().unwrap_or_else(|_| panic!("a port, got {port:?}"));

    let gw = gateway().api(api("/deflate", "1.0", &format!("ws://127.0.0.1:{port}"))).start().await;
    let client = Command::new(&python).args(["-c", CLIENT, &gw.url("/deflate/1.0")]).kill_on_drop(true).output();
    let output =
        within(Duration::from_secs(20), "the python client finishes", client).await.expect("the python client runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    assert!(output.status.success(), "the python client exits 0\nstdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.lines().any(|l| l == "negotiated: permessage-deflate"),
        "the client negotiated permessage-deflate through the gateway; stdout: {stdout}"
    );
    assert!(
        stdout.lines().any(|l| l == "roundtrip: ok"),
        "10 KB of compressed text came back intact; stdout: {stdout}"
    );
    drop(server);
}
