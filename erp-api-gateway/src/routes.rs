//! HTTP routes from `google.api.http` path templates: parsing the template grammar
//! (`/v1/{name=shelves/*/books/*}:verb`), matching request paths against it with the
//! captured variables, and a table that picks the most specific route.
//!
//! Grammar (the public google.api.http rules):
//! `Template = "/" Segments [ ":" Verb ]`, `Segment = "*" | "**" | LITERAL | Variable`,
//! `Variable = "{" FieldPath [ "=" Segments ] "}"`, `FieldPath = IDENT { "." IDENT }`.

use std::collections::BTreeMap;

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path template `{template}`: {reason}")]
pub struct TemplateError {
    template: String,
    reason: String,
}

/// One segment of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Must equal this text.
    Literal(String),
    /// Any one segment.
    Single,
    /// Any number of segments (only last).
    Multi,
}

/// A variable and the segments it captures.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Variable {
    /// Dotted field path, e.g. `employee.id`.
    field: String,
    /// First and one-past-last index into the segments.
    span: (usize, usize),
}

/// A parsed path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    source: String,
    segments: Vec<Segment>,
    variables: Vec<Variable>,
    verb: Option<String>,
}

impl PathTemplate {
    /// Parses a template.
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let fail = |reason: &str| TemplateError {
            template: template.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = template
            .strip_prefix('/')
            .ok_or_else(|| fail("must start with /"))?;
        // The verb follows the last ':' that is not inside braces.
        let mut depth = 0usize;
        let mut verb_at = None;
        for (index, character) in rest.char_indices() {
            match character {
                '{' => depth += 1,
                '}' => depth = depth.checked_sub(1).ok_or_else(|| fail("unbalanced }"))?,
                ':' if depth == 0 => verb_at = Some(index),
                _ => {}
            }
        }
        if depth != 0 {
            return Err(fail("unbalanced {"));
        }
        let (path, verb) = match verb_at {
            Some(index) => (&rest[..index], Some(rest[index + 1..].to_owned())),
            None => (rest, None),
        };
        if verb.as_deref() == Some("") {
            return Err(fail("empty verb"));
        }
        let mut segments = Vec::new();
        let mut variables = Vec::new();
        for raw in split_outside_braces(path).map_err(|reason| fail(&reason))? {
            if let Some(inner) = raw.strip_prefix('{').and_then(|raw| raw.strip_suffix('}')) {
                let (field, pattern) = inner.split_once('=').unwrap_or((inner, "*"));
                if field.is_empty() || !field.split('.').all(is_identifier) {
                    return Err(fail(
                        "a variable needs a field path like `name` or `employee.id`",
                    ));
                }
                if variables
                    .iter()
                    .any(|variable: &Variable| variable.field == field)
                {
                    return Err(fail("a variable appears twice"));
                }
                let start = segments.len();
                for part in pattern.split('/') {
                    segments.push(
                        plain_segment(part)
                            .ok_or_else(|| fail("a variable's pattern has an invalid segment"))?,
                    );
                }
                variables.push(Variable {
                    field: field.to_owned(),
                    span: (start, segments.len()),
                });
            } else {
                segments.push(plain_segment(raw).ok_or_else(|| fail("invalid segment"))?);
            }
        }
        if let Some(position) = segments
            .iter()
            .position(|segment| *segment == Segment::Multi)
            && position + 1 != segments.len()
        {
            return Err(fail("** may only be the last segment"));
        }
        Ok(Self {
            source: template.to_owned(),
            segments,
            variables,
            verb,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The variables' field paths, in order.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.variables
            .iter()
            .map(|variable| variable.field.as_str())
    }

    /// Matches a request path (percent-encoded, without query); returns the variables'
    /// decoded values. A single-segment variable decodes every escape; a multi-segment one
    /// keeps `%2F` so its `/` stay distinguishable.
    pub fn matches(&self, path: &str) -> Option<BTreeMap<String, String>> {
        let rest = path.strip_prefix('/')?;
        let (rest, verb) = match &self.verb {
            Some(verb) => (
                rest.strip_suffix(verb.as_str())?.strip_suffix(':')?,
                Some(verb),
            ),
            None => (rest, None),
        };
        if verb.is_none() && self.segments.last() != Some(&Segment::Multi) && rest.contains(':') {
            // `/v1/employees/e1:terminate` must not match `/v1/employees/{id}`.
            let last = rest.rsplit('/').next().unwrap_or(rest);
            if last.contains(':') {
                return None;
            }
        }
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let mut spans: Vec<(usize, usize)> = Vec::with_capacity(self.segments.len());
        let mut index = 0;
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => {
                    if parts.get(index) != Some(&text.as_str()) {
                        return None;
                    }
                    spans.push((index, index + 1));
                    index += 1;
                }
                Segment::Single => {
                    if parts.get(index).is_none_or(|part| part.is_empty()) {
                        return None;
                    }
                    spans.push((index, index + 1));
                    index += 1;
                }
                Segment::Multi => {
                    spans.push((index, parts.len()));
                    index = parts.len();
                }
            }
        }
        if index != parts.len() {
            return None;
        }
        let mut captured = BTreeMap::new();
        for variable in &self.variables {
            let (first, last) = (spans[variable.span.0].0, spans[variable.span.1 - 1].1);
            let raw = parts[first..last].join("/");
            let multi = last - first != 1 || self.segments[variable.span.1 - 1] == Segment::Multi;
            captured.insert(variable.field.clone(), percent_decode(&raw, multi)?);
        }
        Some(captured)
    }

    /// How specific the template is, for ordering overlapping routes: more literal
    /// segments first, then fewer multi-segment wildcards, then a verb.
    fn specificity(&self) -> (usize, usize, bool) {
        let literals = self
            .segments
            .iter()
            .filter(|segment| matches!(segment, Segment::Literal(_)))
            .count();
        let multis = self
            .segments
            .iter()
            .filter(|segment| **segment == Segment::Multi)
            .count();
        (literals, usize::MAX - multis, self.verb.is_some())
    }
}

fn is_identifier(part: &str) -> bool {
    part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn plain_segment(raw: &str) -> Option<Segment> {
    match raw {
        "*" => Some(Segment::Single),
        "**" => Some(Segment::Multi),
        "" => None,
        literal if !literal.contains(['{', '}', '*', '/']) => {
            Some(Segment::Literal(literal.to_owned()))
        }
        _ => None,
    }
}

fn split_outside_braces(path: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (index, character) in path.char_indices() {
        match character {
            '{' => depth += 1,
            '}' => depth -= 1,
            '/' if depth == 0 => {
                parts.push(&path[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&path[start..]);
    if parts.iter().any(|part| part.is_empty()) {
        return Err("empty segment".to_owned());
    }
    Ok(parts)
}

/// Decodes `%XX` escapes; with `keep_slash`, `%2F` stays encoded. `None` for bad escapes
/// or invalid UTF-8.
pub(crate) fn percent_decode(raw: &str, keep_slash: bool) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = raw.get(index + 1..index + 3)?;
            // Two hex digits exactly: from_str_radix alone would take a sign (`%+5`).
            if !hex.bytes().all(|digit| digit.is_ascii_hexdigit()) {
                return None;
            }
            let value = u8::from_str_radix(hex, 16).ok()?;
            if keep_slash && value == b'/' {
                out.extend_from_slice(&bytes[index..index + 3]);
            } else {
                out.push(value);
            }
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A route: an HTTP method, a template, and where it goes.
#[derive(Debug, Clone)]
pub struct Route<T> {
    /// Upper-case HTTP method.
    pub method: String,
    /// The template.
    pub template: PathTemplate,
    /// What the route leads to (the gRPC method, in the gateway).
    pub target: T,
}

/// What a lookup found.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a, T> {
    /// A route, with the path variables.
    Found(&'a T, BTreeMap<String, String>),
    /// Some route has this path, but not for this method (HTTP 405).
    MethodNotAllowed(Vec<&'a str>),
    /// No route has this path (HTTP 404).
    NotFound,
    /// The path has a broken escape (`%zz`, or bytes that are not UTF-8): HTTP 400.
    MalformedPath,
}

/// Routes, most specific first.
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    routes: Vec<Route<T>>,
}

impl<T> RouteTable<T> {
    /// A table of `routes`; two routes with the same method and shape are refused.
    pub fn new(mut routes: Vec<Route<T>>) -> Result<Self, String> {
        routes.sort_by_key(|route| std::cmp::Reverse(route.template.specificity()));
        for (index, route) in routes.iter().enumerate() {
            if let Some(other) = routes[..index].iter().find(|other| {
                other.method == route.method
                    && other.template.segments == route.template.segments
                    && other.template.verb == route.template.verb
            }) {
                return Err(format!(
                    "{} {} collides with {} {}",
                    route.method,
                    route.template.as_str(),
                    other.method,
                    other.template.as_str()
                ));
            }
        }
        Ok(Self { routes })
    }

    /// The route of a request. HEAD takes the GET routes (its answer is the GET's
    /// headers without the body).
    pub fn lookup(&self, method: &str, path: &str) -> Lookup<'_, T> {
        let method = if method == "HEAD" { "GET" } else { method };
        // The hot path tries only the routes of the request's method; the others are
        // matched only to tell a 405 from a 404.
        for route in self.routes.iter().filter(|route| route.method == method) {
            if let Some(variables) = route.template.matches(path) {
                return Lookup::Found(&route.target, variables);
            }
        }
        let mut allowed = Vec::new();
        for route in &self.routes {
            if !allowed.contains(&route.method.as_str()) && route.template.matches(path).is_some() {
                allowed.push(route.method.as_str());
                if route.method == "GET" {
                    allowed.push("HEAD");
                }
            }
        }
        if allowed.is_empty() {
            if percent_decode(path, true).is_none() {
                Lookup::MalformedPath
            } else {
                Lookup::NotFound
            }
        } else {
            Lookup::MethodNotAllowed(allowed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    fn template(source: &str) -> PathTemplate {
        PathTemplate::parse(source).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn simple_variables_capture_one_segment() {
        let t = template("/v1/employees/{id}");
        assert_eq!(t.matches("/v1/employees/e-1"), vars(&[("id", "e-1")]));
        assert_eq!(t.matches("/v1/employees/e-1/extra"), None);
        assert_eq!(t.matches("/v1/employees/"), None);
        assert_eq!(t.matches("/v1/employees"), None);
    }

    #[test]
    fn verbs_follow_the_last_segment() {
        let t = template("/v1/leave-requests/{leave_request_id}:approve");
        assert_eq!(
            t.matches("/v1/leave-requests/r1:approve"),
            vars(&[("leave_request_id", "r1")])
        );
        assert_eq!(t.matches("/v1/leave-requests/r1:reject"), None);
        assert_eq!(
            template("/v1/employees/{id}").matches("/v1/employees/e1:terminate"),
            None
        );
        assert_eq!(
            template("/v1/attendance:checkIn").matches("/v1/attendance:checkIn"),
            vars(&[])
        );
    }

    #[test]
    fn patterned_and_nested_variables_capture_their_segments() {
        let t = template("/v1/{name=shelves/*/books/*}");
        assert_eq!(
            t.matches("/v1/shelves/s1/books/b2"),
            vars(&[("name", "shelves/s1/books/b2")])
        );
        assert_eq!(t.matches("/v1/shelves/s1/novels/b2"), None);
        let nested = template("/v1/employees/{employee.id}/balances");
        assert_eq!(
            nested.matches("/v1/employees/e9/balances"),
            vars(&[("employee.id", "e9")])
        );
        assert_eq!(nested.fields().collect::<Vec<_>>(), ["employee.id"]);
    }

    #[test]
    fn double_wildcards_take_the_rest_and_keep_encoded_slashes() {
        let t = template("/v1/files/{path=**}");
        assert_eq!(
            t.matches("/v1/files/a/b/c.txt"),
            vars(&[("path", "a/b/c.txt")])
        );
        assert_eq!(t.matches("/v1/files/a%2Fb"), vars(&[("path", "a%2Fb")]));
        assert_eq!(t.matches("/v1/files"), vars(&[("path", "")]));
    }

    #[test]
    fn single_segment_variables_decode_escapes() {
        let t = template("/v1/users/{user_id}");
        assert_eq!(
            t.matches("/v1/users/ada%40example.com"),
            vars(&[("user_id", "ada@example.com")])
        );
        assert_eq!(t.matches("/v1/users/a%2Fb"), vars(&[("user_id", "a/b")]));
        assert_eq!(t.matches("/v1/users/bad%zz"), None);
        assert_eq!(
            t.matches("/v1/users/signed%+5"),
            None,
            "two hex digits, no sign"
        );
    }

    #[test]
    fn malformed_templates_are_refused_with_a_reason() {
        for bad in [
            "v1/x",
            "/v1/{id",
            "/v1/id}",
            "/v1//x",
            "/v1/{}",
            "/v1/{a}/{a}",
            "/v1/**/x",
            "/v1/x:",
            "/v1/{1a}",
        ] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_table_prefers_literals_and_reports_405() {
        let route = |method: &str, source: &str, target: &'static str| Route {
            method: method.to_owned(),
            template: template(source),
            target,
        };
        let table = RouteTable::new(vec![
            route("GET", "/v1/departments/{department_id}", "GetDepartment"),
            route("GET", "/v1/departments:tree", "GetDepartmentTree"),
            route(
                "GET",
                "/v1/departments/{department_id}/employees",
                "ByDepartment",
            ),
            route(
                "DELETE",
                "/v1/departments/{department_id}",
                "DeleteDepartment",
            ),
        ])
        .expect("no collisions");
        assert_eq!(
            table.lookup("GET", "/v1/departments:tree"),
            Lookup::Found(&"GetDepartmentTree", vars(&[]).expect("map"))
        );
        assert_eq!(
            table.lookup("GET", "/v1/departments/d1"),
            Lookup::Found(
                &"GetDepartment",
                vars(&[("department_id", "d1")]).expect("map")
            )
        );
        assert_eq!(
            table.lookup("PUT", "/v1/departments/d1"),
            Lookup::MethodNotAllowed(vec!["GET", "HEAD", "DELETE"])
        );
        assert_eq!(
            table.lookup("HEAD", "/v1/departments/d1"),
            Lookup::Found(
                &"GetDepartment",
                vars(&[("department_id", "d1")]).expect("map")
            ),
            "HEAD takes the GET route"
        );
        assert_eq!(table.lookup("GET", "/v2/nothing"), Lookup::NotFound);
        assert_eq!(table.lookup("GET", "/v1/users/%FF"), Lookup::MalformedPath);
        assert_eq!(table.lookup("GET", "/v1/users/%zz"), Lookup::MalformedPath);
    }

    #[test]
    fn colliding_routes_are_refused() {
        let route = |source: &str| Route {
            method: "GET".to_owned(),
            template: template(source),
            target: (),
        };
        assert!(RouteTable::new(vec![route("/v1/a/{x}"), route("/v1/a/{y}")]).is_err());
    }

    #[test]
    fn every_binding_of_the_contracts_parses_into_one_table() {
        let mut routes = Vec::new();
        for method in erp_proto::Contracts::bundled().methods() {
            for binding in &method.http {
                routes.push(Route {
                    method: binding.method.as_str().to_owned(),
                    template: template(&binding.path),
                    target: method.grpc_path.clone(),
                });
            }
        }
        let count = routes.len();
        let table = RouteTable::new(routes).expect("no collisions among the contracts' bindings");
        assert!(count > 100);
        assert!(
            matches!(table.lookup("GET", "/v1/employees/e1"), Lookup::Found(path, _) if path == "/erp.hrm.v1.HrmService/GetEmployee")
        );
        assert!(
            matches!(table.lookup("GET", "/.well-known/jwks.json"), Lookup::Found(path, _) if path == "/erp.auth.v1.AuthService/GetJwks")
        );
    }
}
