//! The host's `tools` capability against the fake OpenAPI and MCP tool servers (real HTTP on
//! loopback), through the real egress gate: declaration → tool specs, invocation, concurrency
//! limits, timeouts, no retries of calls that reached the server, gate refusals, the auth header.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use fake_openrouter::fake_tools::Behaviour;
use fake_openrouter::fake_tools::mcp::FakeMcp;
use fake_openrouter::fake_tools::openapi::FakeOpenApi;
use responses_pipe_host::bindings::tools::InvokeOptions;
use responses_pipe_host::bindings::types::{ToolCall, ToolError, ToolResult};
use responses_pipe_host::config::Config;
use responses_pipe_host::egress::client::{EgressClient, EgressLimits};
use responses_pipe_host::egress::policy::{Authority, EgressPolicy};
use responses_pipe_host::egress::resolver::{Resolver, StaticResolver, SystemResolver};
use responses_pipe_host::metrics::Metrics;
use responses_pipe_host::tools::{Catalog, ToolHost, ToolLimits};
use serde_json::{Value, json};

use crate::harness::{logs, logs_text};

/// Every test is bounded so a broken timeout fails instead of hanging the suite.
const BOUND: Duration = Duration::from_secs(60);

const TOKEN: &str = "Bearer tool-token-SECRET-4711";

struct Setup {
    tools: Arc<ToolHost>,
    client: Arc<EgressClient>,
    metrics: Arc<Metrics>,
    _file: tempfile::NamedTempFile,
}

/// A tool host built the way `AppBuilder` builds it: config file → egress policy → pooled client.
fn setup(toml: &str, env: &[(&str, &str)], resolver: Option<Arc<dyn Resolver>>) -> Setup {
    setup_with_connect_timeout(toml, env, resolver, Duration::from_secs(5))
}

fn setup_with_connect_timeout(
    toml: &str,
    env: &[(&str, &str)],
    resolver: Option<Arc<dyn Resolver>>,
    connect_timeout: Duration,
) -> Setup {
    logs();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(toml.as_bytes()).unwrap();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let config = Config::load(Some(file.path()), &|name| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .unwrap();
    let to_auth = |v: Vec<(String, u16)>| {
        v.into_iter()
            .map(|(host, port)| Authority { host, port })
            .collect()
    };
    let policy = Arc::new(EgressPolicy::new(
        to_auth(config.host_egress_allowed()),
        to_auth(config.egress_private_ok()),
    ));
    let metrics = Arc::new(Metrics::default());
    let client = Arc::new(
        EgressClient::new(
            policy,
            resolver.unwrap_or_else(|| Arc::new(SystemResolver)),
            EgressLimits {
                connect_timeout,
                first_byte_timeout: Duration::from_secs(30),
                between_bytes_timeout: Duration::from_secs(30),
                total_timeout: None,
                max_response_bytes: 1 << 24,
            },
            metrics.clone(),
        )
        .unwrap(),
    );
    let tools = ToolHost::new(
        config.tool_servers(),
        ToolLimits::from_config(&config),
        client.clone(),
    );
    tools.start();
    Setup {
        tools,
        client,
        metrics,
        _file: file,
    }
}

fn openapi_decl(name: &str, fake: &FakeOpenApi, auth: bool) -> String {
    let auth = if auth {
        "auth_header = \"Authorization\"\nauth_env = \"TEST_TOOL_TOKEN\"\n"
    } else {
        ""
    };
    format!(
        "[[tool_servers]]\nname = \"{name}\"\nkind = \"openapi\"\nurl = \"{}\"\nspec = \"/openapi.json\"\n{auth}\n",
        fake.url()
    )
}

fn mcp_decl(name: &str, fake: &FakeMcp) -> String {
    format!(
        "[[tool_servers]]\nname = \"{name}\"\nkind = \"mcp\"\nurl = \"{}\"\n\n",
        fake.url()
    )
}

fn private(ports: &[u16]) -> String {
    ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn call(id: &str, name: &str, args: Value) -> ToolCall {
    ToolCall {
        call_id: id.to_owned(),
        name: name.to_owned(),
        arguments_json: args.to_string(),
    }
}

fn options(max_parallel: u32) -> InvokeOptions {
    InvokeOptions {
        max_parallel,
        call_timeout_ms: 20_000,
        batch_timeout_ms: 40_000,
        idle_timeout_ms: None,
    }
}

async fn invoke(
    tools: &ToolHost,
    catalog: &Catalog,
    calls: Vec<ToolCall>,
    opts: InvokeOptions,
) -> Vec<ToolResult> {
    tokio::time::timeout(BOUND, tools.invoke(catalog, calls, &opts))
        .await
        .expect("invoke finished within the test bound")
}

fn output(r: &ToolResult) -> &str {
    match &r.output {
        Ok(text) => text,
        Err(e) => panic!("call {} failed: {e:?}", r.call_id),
    }
}

#[tokio::test]
async fn an_openapi_spec_becomes_tool_specs_and_calls_reach_the_server_with_the_auth_header() {
    let fake = FakeOpenApi::start().await.unwrap();
    let s = setup(
        &openapi_decl("weather", &fake, true),
        &[
            ("TEST_TOOL_TOKEN", TOKEN),
            ("EGRESS_PRIVATE_HOSTS", &private(&[fake.port()])),
        ],
        None,
    );
    let catalog = s.tools.catalog().await;
    let mut specs = catalog.specs();
    specs.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<_> = specs.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["create_note", "get_weather", "search"]);
    let weather: Value = serde_json::from_str(&specs[1].parameters_json).unwrap();
    assert_eq!(weather["required"], json!(["city"]));
    assert_eq!(
        weather["properties"]["units"]["enum"],
        json!(["metric", "imperial"])
    );
    assert_eq!(specs[1].description, "Current weather for a city");
    let note: Value = serde_json::from_str(&specs[0].parameters_json).unwrap();
    assert_eq!(note["properties"]["title"]["type"], "string");

    let results = invoke(
        &s.tools,
        &catalog,
        vec![
            call(
                "c1",
                "get_weather",
                json!({"city": "Paris Nord", "units": "metric"}),
            ),
            call(
                "c2",
                "create_note",
                json!({"title": "hello", "text": "world"}),
            ),
            call("c3", "search", json!({"q": "rust", "limit": 2})),
        ],
        options(5),
    )
    .await;
    assert_eq!(
        results
            .iter()
            .map(|r| r.call_id.as_str())
            .collect::<Vec<_>>(),
        ["c1", "c2", "c3"]
    );
    let weather: Value = serde_json::from_str(output(&results[0])).unwrap();
    assert_eq!(weather["city"], "Paris Nord");
    assert_eq!(weather["units"], "metric");
    let note: Value = serde_json::from_str(output(&results[1])).unwrap();
    assert_eq!(note["title"], "hello");
    assert!(output(&results[2]).contains("result for rust"));

    let rec = fake.recorder();
    let calls = rec.calls();
    let weather_call = calls.iter().find(|c| c.tool == "get_weather").unwrap();
    assert_eq!(weather_call.path, "/weather/Paris%20Nord?units=metric");
    let note_call = calls.iter().find(|c| c.tool == "create_note").unwrap();
    assert_eq!(
        note_call.arguments,
        json!({"title": "hello", "text": "world"})
    );
    assert_eq!(note_call.header("content-type"), Some("application/json"));
    // The auth header reached the server on the spec fetch and on every call...
    let all = rec.request_headers();
    assert_eq!(all.len(), 4);
    for headers in &all {
        let auth: Vec<_> = headers
            .iter()
            .filter(|(k, _)| k == "authorization")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(auth, [TOKEN]);
    }
    // ...and never the logs.
    assert!(!logs_text().contains("tool-token-SECRET"));
    assert_eq!(s.tools.metrics().calls("weather", "ok"), 3);
    let text = s.tools.metrics().render();
    assert!(
        text.contains("responses_pipe_tool_calls_total{server=\"weather\",outcome=\"ok\"} 3"),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_tools_bad_arguments_and_missing_parameters_never_reach_the_server() {
    let fake = FakeOpenApi::start().await.unwrap();
    let s = setup(
        &openapi_decl("weather", &fake, false),
        &[("EGRESS_PRIVATE_HOSTS", &private(&[fake.port()]))],
        None,
    );
    let catalog = s.tools.catalog().await;
    let results = invoke(
        &s.tools,
        &catalog,
        vec![
            call("a", "no_such_tool", json!({})),
            ToolCall {
                call_id: "b".into(),
                name: "search".into(),
                arguments_json: "{not json".into(),
            },
            call("c", "search", json!(["an", "array"])),
            call("d", "get_weather", json!({"units": "metric"})),
            call("e", "create_note", json!({"text": "no title"})),
        ],
        options(5),
    )
    .await;
    assert!(matches!(results[0].output, Err(ToolError::NotFound)));
    assert!(matches!(
        results[1].output,
        Err(ToolError::InvalidArgument(_))
    ));
    assert!(matches!(
        results[2].output,
        Err(ToolError::InvalidArgument(_))
    ));
    match &results[3].output {
        Err(ToolError::InvalidArgument(m)) => assert!(m.contains("`city`"), "{m}"),
        other => panic!("{other:?}"),
    }
    // The server itself refuses a note without a title: 422 comes back as invalid-argument with
    // the status and an excerpt of the body.
    match &results[4].output {
        Err(ToolError::InvalidArgument(m)) => {
            assert!(m.starts_with("HTTP 422"), "{m}");
            assert!(m.contains("title is required"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.recorder().calls().len(), 1);
}

#[tokio::test]
async fn mcp_servers_answer_as_json_and_as_sse_and_a_closed_session_is_reopened_once() {
    for sse in [false, true] {
        let fake = FakeMcp::start(sse).await.unwrap();
        let s = setup(
            &mcp_decl("files", &fake),
            &[("EGRESS_PRIVATE_HOSTS", &private(&[fake.port()]))],
            None,
        );
        let catalog = s.tools.catalog().await;
        let mut names: Vec<_> = catalog.specs().into_iter().map(|t| t.name).collect();
        names.sort();
        // Three tools over two `tools/list` pages.
        assert_eq!(names, ["add", "fails_softly", "get_weather"], "sse={sse}");
        let results = invoke(
            &s.tools,
            &catalog,
            vec![
                call("1", "add", json!({"a": 2, "b": 3})),
                call("2", "get_weather", json!({"city": "Oslo"})),
                call("3", "fails_softly", json!({})),
            ],
            options(3),
        )
        .await;
        assert_eq!(output(&results[0]), "5");
        assert_eq!(output(&results[1]), "MCP weather for Oslo: sunny");
        match &results[2].output {
            Err(ToolError::Other(m)) => assert!(m.contains("could not do it"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(fake.initializations(), 1);
        let call_headers = fake.recorder().calls();
        assert!(
            call_headers
                .iter()
                .all(|c| c.header("mcp-session-id") == Some("sess-0"))
        );
        assert!(
            call_headers
                .iter()
                .all(|c| c.header("accept") == Some("application/json, text/event-stream"))
        );

        // The server forgets its sessions: the next call initialises again and succeeds.
        fake.close_sessions();
        let results = invoke(
            &s.tools,
            &catalog,
            vec![call("4", "add", json!({"a": 1, "b": 1}))],
            options(1),
        )
        .await;
        assert_eq!(output(&results[0]), "2");
        assert_eq!(fake.initializations(), 2);

        // A tool whose call always closes the session: one re-initialisation, then "no longer
        // available", and the tool ran zero times.
        fake.recorder().set("add", Behaviour::CloseSession);
        let results = invoke(
            &s.tools,
            &catalog,
            vec![call("5", "add", json!({"a": 1, "b": 1}))],
            options(1),
        )
        .await;
        match &results[0].output {
            Err(ToolError::Unavailable(m)) => assert!(m.contains("no longer available"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(fake.initializations(), 3);
        assert_eq!(s.tools.metrics().calls("files", "session_closed"), 1);
    }
}

#[tokio::test]
async fn a_name_served_by_two_servers_is_prefixed_and_each_call_reaches_its_own_server() {
    let api = FakeOpenApi::start().await.unwrap();
    let mcp = FakeMcp::start(false).await.unwrap();
    let s = setup(
        &format!(
            "{}{}",
            openapi_decl("weather", &api, true),
            mcp_decl("files", &mcp)
        ),
        &[
            ("EGRESS_PRIVATE_HOSTS", &private(&[api.port(), mcp.port()])),
            ("TEST_TOOL_TOKEN", TOKEN),
        ],
        None,
    );
    let catalog = s.tools.catalog().await;
    let mut names: Vec<_> = catalog.specs().into_iter().map(|t| t.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "add",
            "create_note",
            "fails_softly",
            "files__get_weather",
            "search",
            "weather__get_weather"
        ]
    );
    let results = invoke(
        &s.tools,
        &catalog,
        vec![
            call("1", "weather__get_weather", json!({"city": "Rome"})),
            call("2", "files__get_weather", json!({"city": "Rome"})),
        ],
        options(2),
    )
    .await;
    assert!(output(&results[0]).contains("\"temperature_c\":21"));
    assert_eq!(output(&results[1]), "MCP weather for Rome: sunny");
    assert_eq!(api.recorder().calls_of("get_weather"), 1);
    assert_eq!(mcp.recorder().calls_of("get_weather"), 1);
    // The auth header belongs to the OpenAPI server's declaration only.
    assert!(
        api.recorder()
            .request_headers()
            .iter()
            .all(|h| h.iter().any(|(k, v)| k == "authorization" && v == TOKEN))
    );
    let mcp_requests = mcp.recorder().request_headers();
    assert!(mcp_requests.len() >= 4);
    assert!(
        mcp_requests
            .iter()
            .all(|h| h.iter().all(|(k, _)| k != "authorization"))
    );
}

#[tokio::test]
async fn peak_concurrency_at_the_server_never_exceeds_the_per_request_limit() {
    let fake = FakeOpenApi::start().await.unwrap();
    let s = setup(
        &openapi_decl("weather", &fake, false),
        &[
            ("EGRESS_PRIVATE_HOSTS", &private(&[fake.port()])),
            ("MAX_PARALLEL_TOOLS_PER_REQUEST", "3"),
        ],
        None,
    );
    let rec = fake.recorder();
    rec.set("search", Behaviour::Hold);
    let catalog = s.tools.catalog().await;
    let calls: Vec<_> = (0..8)
        .map(|i| call(&format!("c{i}"), "search", json!({"q": format!("q{i}")})))
        .collect();
    // The guest asks for 10 at once; the host allows 3.
    let tools = s.tools.clone();
    let run = tokio::spawn(async move { invoke(&tools, &catalog, calls, options(10)).await });
    tokio::time::timeout(BOUND, rec.wait_running(3))
        .await
        .unwrap();
    rec.release();
    let results = run.await.unwrap();
    assert!(results.iter().all(|r| r.output.is_ok()));
    assert_eq!(rec.calls_of("search"), 8);
    assert_eq!(rec.peak(), 3);
    assert_eq!(s.tools.metrics().peak(), 3);

    // The guest's own lower limit wins.
    let fake = FakeOpenApi::start().await.unwrap();
    let s = setup(
        &openapi_decl("weather", &fake, false),
        &[("EGRESS_PRIVATE_HOSTS", &private(&[fake.port()]))],
        None,
    );
    let rec = fake.recorder();
    rec.set("search", Behaviour::Hold);
    let catalog = s.tools.catalog().await;
    let calls: Vec<_> = (0..4)
        .map(|i| call(&format!("c{i}"), "search", json!({"q": "x"})))
        .collect();
    let tools = s.tools.clone();
    let run = tokio::spawn(async move { invoke(&tools, &catalog, calls, options(2)).await });
    tokio::time::timeout(BOUND, rec.wait_running(2))
        .await
        .unwrap();
    rec.release();
    run.await.unwrap();
    assert_eq!(rec.peak(), 2);
}

#[tokio::test]
async fn peak_concurrency_across_many_parallel_batches_never_exceeds_the_global_limit() {
    let api = FakeOpenApi::start().await.unwrap();
    let mcp = FakeMcp::start(true).await.unwrap();
    let s = setup(
        &format!(
            "{}{}",
            openapi_decl("weather", &api, false),
            mcp_decl("files", &mcp)
        ),
        &[
            ("EGRESS_PRIVATE_HOSTS", &private(&[api.port(), mcp.port()])),
            ("MAX_PARALLEL_TOOLS_PER_REQUEST", "3"),
            ("MAX_PARALLEL_TOOLS_GLOBAL", "4"),
        ],
        None,
    );
    api.recorder().set("search", Behaviour::Hold);
    mcp.recorder().set("add", Behaviour::Hold);
    let catalog = s.tools.catalog().await;
    let mut runs = Vec::new();
    for batch in 0..6 {
        let calls: Vec<_> = (0..5)
            .map(|i| {
                if (batch + i) % 2 == 0 {
                    call(&format!("{batch}-{i}"), "search", json!({"q": "x"}))
                } else {
                    call(&format!("{batch}-{i}"), "add", json!({"a": batch, "b": i}))
                }
            })
            .collect();
        let tools = s.tools.clone();
        let catalog = catalog.clone();
        runs.push(tokio::spawn(async move {
            invoke(&tools, &catalog, calls, options(5)).await
        }));
    }
    // Wait until the host-wide limit is reached across both servers, then let everything finish.
    tokio::time::timeout(BOUND, async {
        while api.recorder().current() + mcp.recorder().current() < 4 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(s.tools.metrics().in_flight(), 4);
    api.recorder().release();
    mcp.recorder().release();
    for run in runs {
        let results = run.await.unwrap();
        assert!(results.iter().all(|r| r.output.is_ok()), "{results:?}");
    }
    assert_eq!(
        api.recorder().calls().len() + mcp.recorder().calls().len(),
        30
    );
    assert!(api.recorder().peak() + mcp.recorder().peak() >= 4);
    assert!(api.recorder().peak() <= 4 && mcp.recorder().peak() <= 4);
    assert_eq!(s.tools.metrics().peak(), 4);
}

#[tokio::test]
async fn call_batch_and_idle_timeouts_fire_and_a_failing_tool_is_called_exactly_once() {
    let fake = FakeOpenApi::start().await.unwrap();
    let s = setup(
        &openapi_decl("weather", &fake, false),
        &[("EGRESS_PRIVATE_HOSTS", &private(&[fake.port()]))],
        None,
    );
    let rec = fake.recorder();
    let catalog = s.tools.catalog().await;

    // Per-call timeout: a hanging tool ends with `timeout`, called once.
    rec.set("search", Behaviour::Hang);
    let mut opts = options(5);
    opts.call_timeout_ms = 300;
    let results = invoke(
        &s.tools,
        &catalog,
        vec![call("1", "search", json!({"q": "x"}))],
        opts,
    )
    .await;
    assert!(matches!(results[0].output, Err(ToolError::Timeout)));
    assert_eq!(rec.calls_of("search"), 1);
    // It was the call's own budget (the batch's would have fired much later).
    let m = s.tools.metrics();
    assert_eq!(
        (
            m.calls("weather", "timeout"),
            m.calls("weather", "batch_timeout")
        ),
        (1, 0)
    );

    // Batch timeout: the hanging call is cut, the quick one in the same batch still answers.
    let mut opts = options(5);
    opts.batch_timeout_ms = 400;
    let results = invoke(
        &s.tools,
        &catalog,
        vec![
            call("2", "search", json!({"q": "x"})),
            call("3", "get_weather", json!({"city": "Lyon"})),
        ],
        opts,
    )
    .await;
    assert!(matches!(results[0].output, Err(ToolError::Timeout)));
    assert!(output(&results[1]).contains("Lyon"));
    // The batch's budget, not the call's.
    assert_eq!(
        (
            m.calls("weather", "timeout"),
            m.calls("weather", "batch_timeout")
        ),
        (1, 1)
    );

    // Idle timeout: the head and one byte arrive, then nothing.
    rec.set("get_weather", Behaviour::Stall);
    let mut opts = options(5);
    opts.idle_timeout_ms = Some(300);
    let results = invoke(
        &s.tools,
        &catalog,
        vec![call("4", "get_weather", json!({"city": "Lyon"}))],
        opts,
    )
    .await;
    assert!(
        matches!(results[0].output, Err(ToolError::Timeout)),
        "{results:?}"
    );
    assert_eq!(rec.calls_of("get_weather"), 2);
    // Cut by the idle budget, before the call's.
    assert_eq!(
        (
            m.calls("weather", "timeout"),
            m.calls("weather", "idle_timeout")
        ),
        (1, 1)
    );

    // A 5xx is a tool error with the status and an excerpt, and the tool is not called again.
    rec.set("create_note", Behaviour::Fail(503));
    let results = invoke(
        &s.tools,
        &catalog,
        vec![call("5", "create_note", json!({"title": "t"}))],
        options(5),
    )
    .await;
    match &results[0].output {
        Err(ToolError::Unavailable(m)) => {
            assert!(m.starts_with("HTTP 503"), "{m}");
            assert!(m.contains("failed on purpose"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(rec.calls_of("create_note"), 1);
    assert_eq!(s.tools.metrics().calls("weather", "retried"), 0);
    assert_eq!(s.tools.metrics().calls("weather", "timeout"), 1);
    rec.wait_idle().await;
}

#[tokio::test]
async fn a_refused_connection_is_retried_at_most_twice() {
    // A port nothing listens on: bind, note it, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let toml = format!(
        "[[tool_servers]]\nname = \"gone\"\nkind = \"openapi\"\nurl = \"http://127.0.0.1:{port}\"\n\
         [tool_servers.operations.\"/ping\".post]\noperationId = \"ping\"\n"
    );
    let s = setup(&toml, &[("EGRESS_PRIVATE_HOSTS", &private(&[port]))], None);
    let catalog = s.tools.catalog().await;
    assert_eq!(catalog.len(), 1);
    let results = invoke(
        &s.tools,
        &catalog,
        vec![call("1", "ping", json!({}))],
        options(1),
    )
    .await;
    match &results[0].output {
        Err(ToolError::Unavailable(m)) => assert!(m.contains("connection refused"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.tools.metrics().calls("gone", "retried"), 2);
    assert_eq!(s.tools.metrics().calls("gone", "unavailable"), 1);
}

#[tokio::test]
async fn the_gate_refuses_undeclared_hosts_and_private_addresses_without_egress_private_hosts() {
    let fake = FakeOpenApi::start().await.unwrap();
    let other = FakeOpenApi::start().await.unwrap();
    let name = "tools.example.test";
    let resolver: Arc<dyn Resolver> = Arc::new(StaticResolver::new([(
        name.to_owned(),
        vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
    )]));
    let decl = format!(
        "[[tool_servers]]\nname = \"weather\"\nkind = \"openapi\"\nurl = \"http://{name}:{}\"\nspec = \"/openapi.json\"\n",
        fake.port()
    );

    // Declared, but its name resolves to loopback and EGRESS_PRIVATE_HOSTS does not list it.
    let s = setup(&decl, &[], Some(resolver.clone()));
    let catalog = s.tools.catalog().await;
    assert!(catalog.is_empty());
    assert!(s.metrics.get("egress_refused", "private_address") >= 1);
    assert!(fake.recorder().request_headers().is_empty());

    // The declaration allowlists exactly its own authority: another server on another port
    // is refused before any connection.
    let request = http::Request::get(format!("{}/openapi.json", other.url()))
        .body(http_body_util::BodyExt::boxed_unsync(
            http_body_util::BodyExt::map_err(
                http_body_util::Empty::<bytes::Bytes>::new(),
                |never| match never {},
            ),
        ))
        .unwrap();
    let refused = s.client.send(request, None).await;
    assert!(refused.is_err());
    assert!(s.metrics.get("egress_refused", "not_allowlisted") >= 1);
    assert!(other.recorder().request_headers().is_empty());

    // With EGRESS_PRIVATE_HOSTS naming it, the same declaration works.
    let s = setup(
        &decl,
        &[("EGRESS_PRIVATE_HOSTS", &format!("{name}:{}", fake.port()))],
        Some(resolver),
    );
    let catalog = s.tools.catalog().await;
    assert_eq!(catalog.len(), 3);
    let results = invoke(
        &s.tools,
        &catalog,
        vec![call("1", "search", json!({"q": "ok"}))],
        options(1),
    )
    .await;
    assert!(output(&results[0]).contains("result for ok"));
}

#[tokio::test]
async fn shutdown_gives_in_flight_calls_the_tool_shutdown_timeout() {
    let fake = FakeOpenApi::start().await.unwrap();
    let s = setup(
        &openapi_decl("weather", &fake, false),
        &[
            ("EGRESS_PRIVATE_HOSTS", &private(&[fake.port()])),
            ("TOOL_SHUTDOWN_TIMEOUT_SECONDS", "0.2"),
        ],
        None,
    );
    let rec = fake.recorder();
    rec.set("search", Behaviour::Hang);
    let catalog = s.tools.catalog().await;
    let tools = s.tools.clone();
    let run = tokio::spawn(async move {
        invoke(
            &tools,
            &catalog,
            vec![call("1", "search", json!({"q": "x"}))],
            options(1),
        )
        .await
    });
    tokio::time::timeout(BOUND, rec.wait_running(1))
        .await
        .unwrap();
    s.tools.begin_shutdown();
    let results = run.await.unwrap();
    match &results[0].output {
        Err(ToolError::Unavailable(m)) => assert!(m.contains("shutting down"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.tools.metrics().calls("weather", "shutdown"), 1);
}

#[tokio::test]
async fn the_assembled_host_serves_declared_tools_and_reports_their_metrics() {
    use crate::harness::{Harness, Options};
    let fake = FakeOpenApi::start().await.unwrap();
    let h = Harness::with(Options {
        env: vec![
            ("EGRESS_PRIVATE_HOSTS", private(&[fake.port()])),
            ("TEST_TOOL_TOKEN", TOKEN.to_owned()),
        ],
        config_toml: Some(openapi_decl("weather", &fake, true)),
        ..Options::default()
    })
    .await;
    let catalog = h.app.tools.catalog().await;
    assert_eq!(catalog.len(), 3);
    let results = invoke(
        &h.app.tools,
        &catalog,
        vec![call("1", "get_weather", json!({"city": "Bern"}))],
        options(1),
    )
    .await;
    assert!(output(&results[0]).contains("Bern"));
    let metrics = h.metrics().await;
    assert!(
        metrics.contains("responses_pipe_tool_calls_total{server=\"weather\",outcome=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("responses_pipe_tool_calls_peak_in_flight 1"),
        "{metrics}"
    );
    assert!(!metrics.contains("SECRET"));
    assert!(!logs_text().contains("tool-token-SECRET"));
}

#[tokio::test]
async fn an_unreachable_spec_does_not_stop_start_up_and_is_fetched_again_later() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let toml = format!(
        "[[tool_servers]]\nname = \"late\"\nkind = \"openapi\"\nurl = \"http://127.0.0.1:{port}\"\nspec = \"/openapi.json\"\n"
    );
    let s = setup(&toml, &[("EGRESS_PRIVATE_HOSTS", &private(&[port]))], None);
    // Start-up went on; the request sees no tools from that server yet.
    assert!(s.tools.catalog().await.is_empty());
    // The server comes up; the background retry (after its backoff) loads the spec.
    let fake = FakeOpenApi::start_on(port).await.unwrap();
    let catalog = tokio::time::timeout(BOUND, async {
        loop {
            let catalog = s.tools.catalog().await;
            if !catalog.is_empty() {
                return catalog;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the spec was fetched again");
    assert_eq!(catalog.len(), 3);
    assert!(logs_text().contains("could not load the tool server's tools; retrying later"));
    let results = invoke(
        &s.tools,
        &catalog,
        vec![call("1", "search", json!({"q": "late"}))],
        options(1),
    )
    .await;
    assert!(output(&results[0]).contains("result for late"));
    assert_eq!(fake.recorder().calls_of("search"), 1);
}

#[tokio::test]
async fn mcp_failures_are_reported_once_and_a_silent_event_stream_hits_the_idle_timeout() {
    let fake = FakeMcp::start(true).await.unwrap();
    let s = setup(
        &mcp_decl("files", &fake),
        &[("EGRESS_PRIVATE_HOSTS", &private(&[fake.port()]))],
        None,
    );
    let catalog = s.tools.catalog().await;
    let rec = fake.recorder();
    rec.set("add", Behaviour::Fail(502));
    let results = invoke(
        &s.tools,
        &catalog,
        vec![call("1", "add", json!({"a": 1, "b": 2}))],
        options(1),
    )
    .await;
    match &results[0].output {
        Err(ToolError::Unavailable(m)) => assert!(m.starts_with("HTTP 502"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(rec.calls_of("add"), 1);

    rec.set("get_weather", Behaviour::Stall);
    let mut opts = options(1);
    opts.idle_timeout_ms = Some(300);
    let results = invoke(
        &s.tools,
        &catalog,
        vec![call("2", "get_weather", json!({"city": "x"}))],
        opts,
    )
    .await;
    assert!(
        matches!(results[0].output, Err(ToolError::Timeout)),
        "{results:?}"
    );
    assert_eq!(rec.calls_of("get_weather"), 1);
    assert_eq!(s.tools.metrics().calls("files", "idle_timeout"), 1);
    assert_eq!(s.tools.metrics().calls("files", "retried"), 0);
}

#[tokio::test]
async fn a_connect_timeout_is_retried_at_most_twice() {
    // A listener with a backlog of one that never accepts: once one connection fills the queue,
    // the kernel drops further SYNs and connecting hangs until the host's connect timeout.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let port = listener.local_addr().unwrap().port();
    let _filler = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let toml = format!(
        "[[tool_servers]]\nname = \"slowconnect\"\nkind = \"openapi\"\nurl = \"http://127.0.0.1:{port}\"\n\
         [tool_servers.operations.\"/ping\".post]\noperationId = \"ping\"\n"
    );
    let s = setup_with_connect_timeout(
        &toml,
        &[("EGRESS_PRIVATE_HOSTS", &private(&[port]))],
        None,
        Duration::from_millis(300),
    );
    let catalog = s.tools.catalog().await;
    let results = invoke(
        &s.tools,
        &catalog,
        vec![call("1", "ping", json!({}))],
        options(1),
    )
    .await;
    match &results[0].output {
        Err(ToolError::Unavailable(m)) => assert!(m.contains("connecting timed out"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.tools.metrics().calls("slowconnect", "retried"), 2);
    drop(listener);
}

#[tokio::test]
async fn a_servers_tool_list_is_fetched_again_and_a_failed_refresh_keeps_the_last_one() {
    let fake = FakeOpenApi::start().await.unwrap();
    let s = setup(
        &openapi_decl("live", &fake, false),
        &[
            ("EGRESS_PRIVATE_HOSTS", &private(&[fake.port()])),
            ("TOOL_SERVER_REFRESH_SECONDS", "1"),
        ],
        None,
    );
    assert_eq!(s.tools.catalog().await.len(), 3);
    // The server drops two of its operations; a later refresh sees it.
    let mut doc = fake_openrouter::fake_tools::openapi::spec_document();
    let paths = doc["paths"].as_object_mut().unwrap();
    paths.retain(|path, _| path.starts_with("/search"));
    fake.serve_spec(doc);
    let catalog = tokio::time::timeout(BOUND, async {
        loop {
            let catalog = s.tools.catalog().await;
            if catalog.len() == 1 {
                return catalog;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the changed list was fetched again");
    let results = invoke(
        &s.tools,
        &catalog,
        vec![call("1", "search", json!({"q": "fresh"}))],
        options(1),
    )
    .await;
    assert!(output(&results[0]).contains("result for fresh"));
    // The server goes away: refreshes fail, and the last list stays in use.
    let fetches = fake.recorder().request_headers().len();
    drop(fake);
    tokio::time::timeout(BOUND, async {
        while !logs_text().contains("keeps_last_list=true") {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("a refresh failed after the server went away");
    assert_eq!(s.tools.catalog().await.len(), 1);
    assert!(fetches >= 2, "{fetches} spec fetches");
}
