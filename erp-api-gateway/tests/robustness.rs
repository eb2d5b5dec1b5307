//! Property tests: the route matcher, the template parser and the transcoder take any
//! input a client can send and answer with a route or a precise refusal, never a panic.

use std::collections::BTreeMap;

use erp_api_gateway::{
    routes::{PathTemplate, Route, RouteTable},
    transcode::{RequestParts, decode_request},
};
use erp_proto::Contracts;
use proptest::prelude::*;

fn table() -> RouteTable<String> {
    let routes = Contracts::bundled()
        .methods()
        .flat_map(|method| {
            method.http.iter().map(|binding| Route {
                method: binding.method.as_str().to_owned(),
                template: PathTemplate::parse(&binding.path).expect("contract templates parse"),
                target: method.grpc_path.clone(),
            })
        })
        .collect();
    RouteTable::new(routes).expect("no collisions")
}

/// Paths built from the pieces that make matching interesting.
fn paths() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("v1".to_owned()),
        Just("employees".to_owned()),
        Just("users".to_owned()),
        Just("".to_owned()),
        Just("%2F".to_owned()),
        Just("%zz".to_owned()),
        Just("%".to_owned()),
        Just(":verb".to_owned()),
        Just("..".to_owned()),
        "[a-z0-9:%._~-]{0,12}",
        any::<String>(),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|pieces| format!("/{}", pieces.join("/")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn the_route_table_answers_any_path(path in paths(), method in "(GET|POST|PATCH|PUT|DELETE|HEAD|[A-Z]{1,7})") {
        let table = table();
        let _ = table.lookup(&method, &path);
    }

    #[test]
    fn template_parsing_refuses_rather_than_panics(template in "[/{}=*a-z.:%_]{0,40}") {
        let _ = PathTemplate::parse(&template);
    }

    #[test]
    fn the_transcoder_refuses_rather_than_panics(
        query in proptest::option::of("[a-zA-Z._=&%0-9+-]{0,60}"),
        body in prop_oneof![
            Just(String::new()),
            Just("{}".to_owned()),
            Just("{\"employee\": {\"firstName\": 1}}".to_owned()),
            Just("{\"id\": null, \"expectedVersion\": \"x\"}".to_owned()),
            "\\{[\" :a-zA-Z0-9,{}\\[\\]-]{0,60}",
            any::<String>(),
        ],
        value in "[a-z0-9%/.]{0,10}",
    ) {
        // Every binding of every method, as its route would call the transcoder: its own
        // path variables (the fuzzed value in each), its own body rule.
        for method in Contracts::bundled().methods() {
            let input = method.descriptor.input();
            for binding in &method.http {
                let template =
                    PathTemplate::parse(&binding.path).expect("contract templates parse");
                let variables: BTreeMap<String, String> = template
                    .fields()
                    .map(|field| (field.to_owned(), value.clone()))
                    .collect();
                let _ = decode_request(
                    &input,
                    &RequestParts {
                        body_field: binding.body.as_deref(),
                        variables: &variables,
                        query: query.as_deref(),
                        body: body.as_bytes(),
                    },
                );
            }
        }
    }
}
