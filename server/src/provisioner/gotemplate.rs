//! Go `text/template`, as Matchbox renders its templates: the same syntax (actions, pipelines,
//! `if`/`else if`/`range`/`with`, variables, trim markers, comments) and the same output, with
//! Matchbox's option `missingkey=error`. Data is JSON, as Matchbox's is (numbers are float64 in
//! Go, and print as Go prints them). `define`, `template` and `block` are refused by name.

use serde_json::{Map, Value};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// A template that failed to parse or to render, with the line and column (1-based) it failed at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct TemplateError {
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// It stopped at a limit ([`Limits`]), whatever the data.
    pub over_limit: bool,
}

/// A parsed template, ready to render many times.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
    source: String,
}

#[derive(Debug, Clone)]
enum Node {
    Text(usize, String),
    Action(Pipe),
    If { pipe: Pipe, then: Vec<Node>, otherwise: Vec<Node> },
    Range { pipe: Pipe, body: Vec<Node>, otherwise: Vec<Node> },
    With { pipe: Pipe, body: Vec<Node>, otherwise: Vec<Node> },
}

#[derive(Debug, Clone)]
struct Pipe {
    at: usize,
    /// `$x := …` (or `$i, $e := …` in `range`); `assign` for `$x = …`.
    vars: Vec<String>,
    assign: bool,
    commands: Vec<Vec<Operand>>,
}

#[derive(Debug, Clone)]
enum Operand {
    Dot,
    Field(Vec<String>),
    Var(String, Vec<String>),
    Func(String),
    Str(String),
    Number(f64),
    Bool(bool),
    Nil,
    Sub(Box<Pipe>, Vec<String>),
}

fn position(source: &str, at: usize) -> (usize, usize) {
    let before = &source[..at.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

struct Failure {
    at: usize,
    message: String,
    over_limit: bool,
}

fn fail<T>(at: usize, message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure { at, message: message.into(), over_limit: false })
}

fn over_limit<T>(at: usize, message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure { at, message: message.into(), over_limit: true })
}

impl Template {
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let pieces = split(source).map_err(|f| error_at(source, f))?;
        let mut pieces = pieces.into_iter().peekable();
        let (nodes, end) = parse_list(&mut pieces, 0).map_err(|f| error_at(source, f))?;
        if let Some((at, keyword)) = end {
            return Err(error_at(
                source,
                Failure { at, message: format!("unexpected {{{{{keyword}}}}}"), over_limit: false },
            ));
        }
        Ok(Template { nodes, source: source.to_string() })
    }

    /// Renders with `data` as dot and `$`, within the default [`Limits`], as Matchbox does.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        self.render_within(data, Limits::default())
    }

    pub fn render_within(&self, data: &Value, limits: Limits) -> Result<String, TemplateError> {
        self.run(data, limits, false).1
    }

    /// Renders for a sample machine, to check a template before it is saved: the whole template
    /// is walked even where the sample lacks a key. An error that no data could avoid (a limit,
    /// or any error when no key was missing) is returned; the text only when no key was missing.
    pub fn check(&self, sample: &Value) -> Result<Option<String>, TemplateError> {
        match self.run(sample, Limits::default(), true) {
            (false, Ok(text)) => Ok(Some(text)),
            (true, Ok(_)) => Ok(None),
            (missed, Err(e)) if missed && !e.over_limit => Ok(None),
            (_, Err(e)) => Err(e),
        }
    }

    /// Whether a key was missed (when lenient), and the output.
    fn run(&self, data: &Value, limits: Limits, lenient: bool) -> (bool, Result<String, TemplateError>) {
        let mut out = String::new();
        let mut run = Run {
            vars: vec![("$".to_string(), data.clone())],
            steps: limits.steps,
            deadline: Instant::now() + limits.time,
            limits,
            lenient,
            missed: false,
        };
        let result = walk(&self.nodes, data, &mut run, &mut out).map_err(|f| error_at(&self.source, f));
        (run.missed, result.map(|()| out))
    }
}

fn error_at(source: &str, failure: Failure) -> TemplateError {
    let (line, column) = position(source, failure.at);
    TemplateError { line, column, message: failure.message, over_limit: failure.over_limit }
}

/// The template cut into text and actions (the inside of `{{ }}`, trimmed, with its offset).
enum Piece {
    Text(usize, String),
    Action(usize, String),
}

fn split(source: &str) -> Result<Vec<Piece>, Failure> {
    let mut pieces = Vec::new();
    let mut rest = 0;
    let mut trim_next = false;
    while let Some(open) = source[rest..].find("{{").map(|i| i + rest) {
        let mut text = &source[rest..open];
        if trim_next {
            text = text.trim_start();
        }
        let mut inner_start = open + 2;
        let trim_before = source[inner_start..].starts_with("- ")
            || source[inner_start..].starts_with("-\t")
            || source[inner_start..].starts_with("-\n");
        if trim_before {
            text = text.trim_end();
            inner_start += 1;
        }
        pieces.push(Piece::Text(rest, text.to_string()));
        let close = find_close(source, inner_start)?;
        let mut inner_end = close;
        trim_next = false;
        if close > inner_start && source[..close].ends_with(" -")
            || source[..close].ends_with("\t-")
            || source[..close].ends_with("\n-")
        {
            trim_next = true;
            inner_end -= 1;
        }
        let inner = &source[inner_start..inner_end];
        let trimmed = inner.trim();
        if !(trimmed.starts_with("/*") && trimmed.ends_with("*/")) {
            let offset = inner_start + (inner.len() - inner.trim_start().len());
            pieces.push(Piece::Action(offset, trimmed.to_string()));
        }
        rest = close + 2;
    }
    let mut text = &source[rest..];
    if trim_next {
        text = text.trim_start();
    }
    pieces.push(Piece::Text(rest, text.to_string()));
    Ok(pieces)
}

/// Where the `}}` closing an action that starts at `from` is, skipping quoted strings.
fn find_close(source: &str, from: usize) -> Result<usize, Failure> {
    let bytes = source.as_bytes();
    let mut i = from;
    if source[from..].trim_start().starts_with("/*") {
        return match source[from..].find("*/") {
            Some(end) => source[from + end..].find("}}").map(|c| from + end + c).ok_or(Failure {
                at: from,
                message: "unclosed action: a comment needs a closing }}".into(),
                over_limit: false,
            }),
            None => fail(from, "unclosed comment: add */"),
        };
    }
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'`' | b'\'' => {
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if quote != b'`' && bytes[i] == b'\\' {
                        i += 1;
                    }
                    // A backslash may be the template's last byte (found by fuzzing).
                    if quote != b'`' && bytes.get(i) == Some(&b'\n') {
                        return fail(i, "unterminated quoted string");
                    }
                    i += 1;
                }
                if i >= bytes.len() {
                    return fail(from, "unterminated quoted string");
                }
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => return Ok(i),
            _ => {}
        }
        i += 1;
    }
    fail(from, "unclosed action: add }}")
}

type Pieces = std::iter::Peekable<std::vec::IntoIter<Piece>>;

/// A closing keyword (`end`, `else …`) and where it is.
type Closer = Option<(usize, String)>;

/// Parses nodes up to a closing keyword, which it returns with its offset.
fn parse_list(pieces: &mut Pieces, depth: usize) -> Result<(Vec<Node>, Closer), Failure> {
    let mut nodes = Vec::new();
    while let Some(piece) = pieces.next() {
        let (at, action) = match piece {
            Piece::Text(at, t) => {
                if !t.is_empty() {
                    nodes.push(Node::Text(at, t));
                }
                continue;
            }
            Piece::Action(at, a) => (at, a),
        };
        let (keyword, rest) = match action.split_once(|c: char| c.is_whitespace()) {
            Some((k, r)) => (k, r.trim()),
            None => (action.as_str(), ""),
        };
        let rest_at = at + action.len() - rest.len();
        match keyword {
            "end" | "else" => return Ok((nodes, Some((at, action.clone())))),
            "if" | "range" | "with" => nodes.push(parse_block(keyword, rest, rest_at, pieces, depth + 1)?),
            "define" | "template" | "block" | "break" | "continue" => {
                return fail(at, format!("{{{{{keyword}}}}} is not supported in provisioning templates"));
            }
            "" => return fail(at, "missing value for command"),
            _ => nodes.push(Node::Action(parse_pipe(&action, at)?)),
        }
    }
    Ok((nodes, None))
}

fn parse_block(keyword: &str, rest: &str, at: usize, pieces: &mut Pieces, depth: usize) -> Result<Node, Failure> {
    if depth > MAX_DEPTH {
        return over_limit(at, format!("blocks (counting each else if) nest more than {MAX_DEPTH} deep"));
    }
    let pipe = parse_pipe(rest, at)?;
    if rest.is_empty() {
        return fail(at, format!("missing value for {keyword}"));
    }
    let (body, end) = parse_list(pieces, depth)?;
    let otherwise = match end {
        None => return fail(at, format!("unexpected end of template: {{{{{keyword}}}}} needs {{{{end}}}}")),
        Some((_, e)) if e == "end" => Vec::new(),
        Some((else_at, e)) if e == "else" => {
            let (otherwise, end) = parse_list(pieces, depth)?;
            match end {
                Some((_, e)) if e == "end" => otherwise,
                _ => return fail(else_at, "{{else}} needs {{end}}"),
            }
        }
        Some((else_at, e)) => {
            // `else if …` / `else with …`: a nested block that shares this block's `end`.
            let chained = e.trim_start_matches("else").trim_start();
            let (inner, inner_rest) = chained.split_once(|c: char| c.is_whitespace()).unwrap_or((chained, ""));
            if inner != keyword || keyword == "range" {
                return fail(else_at, format!("unexpected {{{{{e}}}}}"));
            }
            let inner_at = else_at + e.len() - inner_rest.len();
            vec![parse_block(keyword, inner_rest.trim(), inner_at, pieces, depth + 1)?]
        }
    };
    Ok(match keyword {
        "if" => Node::If { pipe, then: body, otherwise },
        "range" => Node::Range { pipe, body, otherwise },
        _ => Node::With { pipe, body, otherwise },
    })
}

/// Tokens of an action.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Open,
    Close,
    Bar,
    Declare,
    Assign,
    Comma,
}

fn tokens(action: &str, at: usize) -> Result<Vec<(usize, Token)>, Failure> {
    let chars: Vec<(usize, char)> = action.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (off, c) = chars[i];
        let here = at + off;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => (out.push((here, Token::Open)), i += 1).1,
            ')' => (out.push((here, Token::Close)), i += 1).1,
            '|' => (out.push((here, Token::Bar)), i += 1).1,
            ',' => (out.push((here, Token::Comma)), i += 1).1,
            ':' if chars.get(i + 1).map(|c| c.1) == Some('=') => (out.push((here, Token::Declare)), i += 2).1,
            '=' => (out.push((here, Token::Assign)), i += 1).1,
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&(_, c)) = chars.get(i) else { return fail(here, "unterminated quoted string") };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let Some(&(_, e)) = chars.get(i) else { return fail(here, "unterminated quoted string") };
                            i += 1;
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '\\' => '\\',
                                '"' => '"',
                                '\'' => '\'',
                                _ => return fail(here, format!("unsupported escape \\{e} in a string")),
                            });
                        }
                        c => s.push(c),
                    }
                }
                out.push((here, Token::Str(s)));
            }
            '`' => {
                let start = i + 1;
                let end = chars[start..].iter().position(|&(_, c)| c == '`').map(|p| p + start);
                let Some(end) = end else { return fail(here, "unterminated raw string") };
                out.push((here, Token::Str(chars[start..end].iter().map(|&(_, c)| c).collect())));
                i = end + 1;
            }
            _ => {
                let start = i;
                while i < chars.len() && !matches!(chars[i].1, ' ' | '\t' | '\n' | '\r' | '(' | ')' | '|' | ',' | '=') {
                    if chars[i].1 == ':' && chars.get(i + 1).map(|c| c.1) == Some('=') {
                        break;
                    }
                    i += 1;
                }
                out.push((here, Token::Word(chars[start..i].iter().map(|&(_, c)| c).collect())));
            }
        }
    }
    Ok(out)
}

fn parse_pipe(action: &str, at: usize) -> Result<Pipe, Failure> {
    let toks = tokens(action, at)?;
    let mut pos = 0;
    let pipe = pipe_of(&toks, &mut pos, at, 0)?;
    if let Some((at, t)) = toks.get(pos) {
        return fail(*at, format!("unexpected {t:?} in action"));
    }
    Ok(pipe)
}

fn pipe_of(toks: &[(usize, Token)], pos: &mut usize, at: usize, depth: usize) -> Result<Pipe, Failure> {
    if depth > MAX_DEPTH {
        return over_limit(at, format!("parentheses nest more than {MAX_DEPTH} deep"));
    }
    let mut vars = Vec::new();
    let mut assign = false;
    // A declaration: `$x :=`, `$i, $e :=` or an assignment `$x =`.
    let mut look = *pos;
    let mut names = Vec::new();
    while let Some((_, Token::Word(w))) = toks.get(look)
        && w.starts_with('$')
    {
        names.push(w.clone());
        look += 1;
        match toks.get(look) {
            Some((_, Token::Comma)) => look += 1,
            Some((_, Token::Declare)) | Some((_, Token::Assign)) => break,
            _ => {
                names.clear();
                break;
            }
        }
    }
    if !names.is_empty()
        && let Some((_, t @ (Token::Declare | Token::Assign))) = toks.get(look)
    {
        assign = *t == Token::Assign;
        vars = names;
        *pos = look + 1;
    }
    let mut commands = Vec::new();
    let mut command = Vec::new();
    while let Some((here, t)) = toks.get(*pos) {
        match t {
            Token::Close => break,
            Token::Bar => {
                if command.is_empty() {
                    return fail(*here, "missing command before |");
                }
                commands.push(std::mem::take(&mut command));
                *pos += 1;
            }
            Token::Open => {
                *pos += 1;
                let inner = pipe_of(toks, pos, *here, depth + 1)?;
                match toks.get(*pos) {
                    Some((_, Token::Close)) => *pos += 1,
                    _ => return fail(*here, "unclosed left paren"),
                }
                let fields = trailing_fields(toks, pos);
                command.push(Operand::Sub(Box::new(inner), fields));
            }
            Token::Str(s) => {
                command.push(Operand::Str(s.clone()));
                *pos += 1;
            }
            Token::Word(w) => {
                command.push(operand(w, *here)?);
                *pos += 1;
            }
            other => return fail(*here, format!("unexpected {other:?} in command")),
        }
    }
    if !command.is_empty() {
        commands.push(command);
    } else if !commands.is_empty() {
        return fail(at, "missing command after |");
    }
    if commands.is_empty() {
        return fail(at, "missing value for command");
    }
    Ok(Pipe { at, vars, assign, commands })
}

/// `.a.b` right after a parenthesised pipeline: `(index . "x").name`.
fn trailing_fields(toks: &[(usize, Token)], pos: &mut usize) -> Vec<String> {
    match toks.get(*pos) {
        Some((_, Token::Word(w))) if w.starts_with('.') && w.len() > 1 => {
            *pos += 1;
            w[1..].split('.').map(str::to_string).collect()
        }
        _ => Vec::new(),
    }
}

fn operand(word: &str, at: usize) -> Result<Operand, Failure> {
    let fields = |s: &str| -> Result<Vec<String>, Failure> {
        s.split('.')
            .map(|f| {
                if f.is_empty() || !f.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    fail(at, format!("bad field name in {word}"))
                } else {
                    Ok(f.to_string())
                }
            })
            .collect()
    };
    Ok(match word {
        "." => Operand::Dot,
        "true" => Operand::Bool(true),
        "false" => Operand::Bool(false),
        "nil" => Operand::Nil,
        w if w.starts_with('.') => Operand::Field(fields(&w[1..])?),
        w if w.starts_with('$') => match w.split_once('.') {
            Some((name, rest)) => Operand::Var(name.to_string(), fields(rest)?),
            None => Operand::Var(w.to_string(), Vec::new()),
        },
        w if w.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') => {
            Operand::Number(w.parse().or_else(|_| fail(at, format!("bad number syntax: {w}")))?)
        }
        w if FUNCTIONS.contains(&w) => Operand::Func(w.to_string()),
        w => return fail(at, format!("function \"{w}\" not defined")),
    })
}

const FUNCTIONS: [&str; 19] = [
    "and", "or", "not", "len", "index", "print", "printf", "println", "eq", "ne", "lt", "le", "gt", "ge", "html", "js",
    "urlquery", "slice", "call",
];

/// What one rendering may spend. Going over a limit stops it with an error at the action that
/// went over: templates come from people and imports, and boot requests from anyone, so no
/// template can take a process's memory or a worker's time.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Nodes walked, range iterations and commands evaluated.
    pub steps: u64,
    /// Bytes of output, and of any one value a function makes.
    pub bytes: usize,
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { steps: 1_000_000, bytes: 4 << 20, time: Duration::from_secs(2) }
    }
}

/// How deep blocks (`if`, `range`, `with`) and parentheses may nest.
const MAX_DEPTH: usize = 100;

/// One rendering under way: its variables and what it has left to spend.
struct Run {
    vars: Vec<(String, Value)>,
    steps: u64,
    deadline: Instant,
    limits: Limits,
    /// A missing map key gives nothing instead of an error (to walk a whole template with sample
    /// data); `missed` says one did.
    lenient: bool,
    missed: bool,
}

impl Run {
    fn step(&mut self, at: usize) -> Result<(), Failure> {
        if self.steps == 0 {
            return over_limit(
                at,
                format!(
                    "stopped after {} steps, the most one rendering may take (a range too long, or nested too deep)",
                    self.limits.steps
                ),
            );
        }
        self.steps -= 1;
        if self.steps.is_multiple_of(1024) && Instant::now() > self.deadline {
            return over_limit(at, format!("stopped after {:?}, the longest one rendering may take", self.limits.time));
        }
        Ok(())
    }

    fn fits(&self, len: usize, at: usize, what: &str) -> Result<(), Failure> {
        if len > self.limits.bytes {
            return over_limit(
                at,
                format!("{what} is over {} bytes, the most one rendering may make", self.limits.bytes),
            );
        }
        Ok(())
    }
}

fn walk(nodes: &[Node], dot: &Value, run: &mut Run, out: &mut String) -> Result<(), Failure> {
    for node in nodes {
        match node {
            Node::Text(at, t) => {
                run.step(*at)?;
                out.push_str(t);
                run.fits(out.len(), *at, "the output")?;
            }
            Node::Action(pipe) => {
                run.step(pipe.at)?;
                let value = eval_pipe(pipe, dot, run)?;
                if pipe.vars.is_empty() {
                    print_value(&value, out);
                    run.fits(out.len(), pipe.at, "the output")?;
                }
            }
            Node::If { pipe, then, otherwise } => {
                let mark = run.vars.len();
                let value = eval_pipe(pipe, dot, run)?;
                walk(if truth(&value) { then } else { otherwise }, dot, run, out)?;
                run.vars.truncate(mark);
            }
            Node::With { pipe, body, otherwise } => {
                let mark = run.vars.len();
                let value = eval_pipe(pipe, dot, run)?;
                if truth(&value) {
                    walk(body, &value, run, out)?;
                } else {
                    walk(otherwise, dot, run, out)?;
                }
                run.vars.truncate(mark);
            }
            Node::Range { pipe, body, otherwise } => {
                let mark = run.vars.len();
                let plain = Pipe { vars: Vec::new(), ..pipe.clone() };
                let value = eval_pipe(&plain, dot, run)?;
                // Items are made one at a time: `range 1e15` runs out of steps, not of memory.
                let items: Box<dyn Iterator<Item = (Value, Value)>> = match &value {
                    Value::Array(a) => Box::new(a.iter().enumerate().map(|(i, v)| (Value::from(i as f64), v.clone()))),
                    Value::Object(m) => {
                        let mut keys: Vec<&String> = m.keys().collect();
                        keys.sort();
                        Box::new(keys.into_iter().map(|k| (Value::from(k.clone()), m[k].clone())))
                    }
                    Value::Null => Box::new(std::iter::empty()),
                    Value::Number(n) => {
                        let n = n.as_f64().unwrap_or(0.0);
                        if n.fract() != 0.0 || n < 0.0 {
                            return fail(pipe.at, format!("range can't iterate over {}", go_float(n)));
                        }
                        Box::new((0..n as u64).map(|i| (Value::from(i as f64), Value::from(i as f64))))
                    }
                    other => return fail(pipe.at, format!("range can't iterate over {}", go_text(other))),
                };
                let mut items = items.peekable();
                if items.peek().is_none() {
                    walk(otherwise, dot, run, out)?;
                }
                for (key, item) in items {
                    run.step(pipe.at)?;
                    let inner = run.vars.len();
                    match pipe.vars.as_slice() {
                        [] => {}
                        [element] => run.vars.push((element.clone(), item.clone())),
                        [index, element] => {
                            run.vars.push((index.clone(), key));
                            run.vars.push((element.clone(), item.clone()));
                        }
                        _ => return fail(pipe.at, "too many declarations in range"),
                    }
                    walk(body, &item, run, out)?;
                    run.vars.truncate(inner);
                }
                run.vars.truncate(mark);
            }
        }
    }
    Ok(())
}

fn eval_pipe(pipe: &Pipe, dot: &Value, run: &mut Run) -> Result<Value, Failure> {
    let mut value: Option<Value> = None;
    for command in &pipe.commands {
        run.step(pipe.at)?;
        value = Some(eval_command(command, dot, run, value, pipe.at)?);
    }
    let value = value.unwrap_or(Value::Null);
    if pipe.assign {
        for name in &pipe.vars {
            match run.vars.iter_mut().rev().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = value.clone(),
                None => return fail(pipe.at, format!("undefined variable: {name}")),
            }
        }
    } else if let [name] = pipe.vars.as_slice() {
        run.vars.push((name.clone(), value.clone()));
    } else if pipe.vars.len() > 1 {
        return fail(pipe.at, "too many declarations");
    }
    Ok(value)
}

fn eval_command(
    command: &[Operand],
    dot: &Value,
    run: &mut Run,
    piped: Option<Value>,
    at: usize,
) -> Result<Value, Failure> {
    if let Some(Operand::Func(name)) = command.first() {
        let mut args = Vec::with_capacity(command.len());
        // `and` and `or` stop at the first argument that decides them, as Go's do.
        if name == "and" || name == "or" {
            let mut last = Value::Null;
            for operand in &command[1..] {
                last = eval_operand(operand, dot, run, at)?;
                if truth(&last) == (name == "or") {
                    return Ok(last);
                }
            }
            if let Some(p) = piped {
                last = p;
            }
            if command.len() == 1 && last.is_null() {
                return fail(at, format!("wrong number of args for {name}: want at least 1 got 0"));
            }
            return Ok(last);
        }
        for operand in &command[1..] {
            args.push(eval_operand(operand, dot, run, at)?);
        }
        args.extend(piped);
        let value = call(name, &args, run.limits.bytes, at)?;
        if let Value::String(s) = &value {
            run.fits(s.len(), at, &format!("what {name} made"))?;
        }
        return Ok(value);
    }
    if piped.is_some() {
        return fail(at, "can't give argument to non-function");
    }
    match command {
        [operand] => eval_operand(operand, dot, run, at),
        _ => fail(at, "can't give argument to non-function"),
    }
}

fn eval_operand(operand: &Operand, dot: &Value, run: &mut Run, at: usize) -> Result<Value, Failure> {
    Ok(match operand {
        Operand::Dot => dot.clone(),
        Operand::Field(fields) => fields_of(dot, fields, run, at)?,
        Operand::Var(name, fields) => {
            let Some((_, value)) = run.vars.iter().rev().find(|(n, _)| n == name) else {
                return fail(at, format!("undefined variable: {name}"));
            };
            fields_of(&value.clone(), fields, run, at)?
        }
        Operand::Str(s) => Value::from(s.clone()),
        Operand::Number(n) => Value::from(*n),
        Operand::Bool(b) => Value::Bool(*b),
        Operand::Nil => return fail(at, "nil is not a command"),
        Operand::Func(name) => call(name, &[], run.limits.bytes, at)?,
        Operand::Sub(pipe, fields) => fields_of(&eval_pipe(pipe, dot, run)?, fields, run, at)?,
    })
}

/// `.a.b.c`: with `missingkey=error`, a key that is not there is an error.
fn fields_of(value: &Value, fields: &[String], run: &mut Run, at: usize) -> Result<Value, Failure> {
    let mut current = value;
    for field in fields {
        current = match current {
            Value::Object(map) => match map.get(field) {
                Some(v) => v,
                None if run.lenient => {
                    run.missed = true;
                    return Ok(Value::Null);
                }
                None => return fail(at, format!("map has no entry for key \"{field}\"")),
            },
            Value::Null => return fail(at, format!("nil pointer evaluating interface {{}}.{field}")),
            other => return fail(at, format!("can't evaluate field {field} in type {}", go_type(other))),
        };
    }
    Ok(current.clone())
}

fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "interface {}",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn truth(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// Calls a function; `max` bounds the widths and precisions `printf` may pad to.
fn call(name: &str, args: &[Value], max: usize, at: usize) -> Result<Value, Failure> {
    let want = |n: usize| -> Result<(), Failure> {
        if args.len() == n {
            Ok(())
        } else {
            fail(at, format!("wrong number of args for {name}: want {n} got {}", args.len()))
        }
    };
    Ok(match name {
        "not" => {
            want(1)?;
            Value::Bool(!truth(&args[0]))
        }
        "len" => {
            want(1)?;
            Value::from(match &args[0] {
                Value::String(s) => s.len(),
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                other => return fail(at, format!("error calling len: len of type {}", go_type(other))),
            } as f64)
        }
        "index" => {
            let Some((first, keys)) = args.split_first() else { return want(1).map(|_| Value::Null) };
            let mut current = first.clone();
            for key in keys {
                current = match (&current, key) {
                    // A missing key gives the zero value, even with missingkey=error, as in Go.
                    (Value::Object(m), Value::String(k)) => m.get(k).cloned().unwrap_or(Value::Null),
                    (Value::Array(a), Value::Number(n)) => {
                        let i = n.as_f64().unwrap_or(-1.0);
                        match a.get(i as usize) {
                            Some(v) if i >= 0.0 && i.fract() == 0.0 => v.clone(),
                            _ => return fail(at, format!("error calling index: index out of range: {}", go_float(i))),
                        }
                    }
                    (Value::Null, _) => return fail(at, "error calling index: index of untyped nil"),
                    (c, k) => {
                        return fail(
                            at,
                            format!("error calling index: can't index item of type {} with {}", go_type(c), go_type(k)),
                        );
                    }
                };
            }
            current
        }
        "slice" => {
            let Some((first, bounds)) = args.split_first() else { return want(1).map(|_| Value::Null) };
            let n = |v: &Value| v.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0).map(|f| f as usize);
            let bounds: Option<Vec<usize>> = bounds.iter().map(n).collect();
            let Some(bounds) = bounds else { return fail(at, "error calling slice: bad index") };
            match first {
                Value::String(s) => {
                    let (from, to) = (bounds.first().copied().unwrap_or(0), bounds.get(1).copied().unwrap_or(s.len()));
                    match s.get(from..to) {
                        Some(part) if bounds.len() <= 2 => Value::from(part),
                        _ => return fail(at, "error calling slice: index out of range"),
                    }
                }
                Value::Array(a) => {
                    let (from, to) = (bounds.first().copied().unwrap_or(0), bounds.get(1).copied().unwrap_or(a.len()));
                    match a.get(from..to) {
                        Some(part) => Value::from(part.to_vec()),
                        None => return fail(at, "error calling slice: index out of range"),
                    }
                }
                other => return fail(at, format!("error calling slice: can't slice item of type {}", go_type(other))),
            }
        }
        "print" => Value::from(go_sprint(args)),
        "println" => Value::from(format!("{}\n", args.iter().map(go_text).collect::<Vec<_>>().join(" "))),
        "printf" => {
            let Some((Value::String(format), rest)) = args.split_first() else {
                return fail(at, "printf needs a format string first");
            };
            Value::from(go_printf(format, rest, max).or_else(|message| over_limit(at, message))?)
        }
        "eq" => {
            let Some((first, rest)) = args.split_first() else { return want(2).map(|_| Value::Null) };
            if rest.is_empty() {
                return fail(at, "missing argument for comparison");
            }
            let mut equal = false;
            for other in rest {
                equal |= compare(first, other, at)? == std::cmp::Ordering::Equal;
            }
            Value::Bool(equal)
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(2)?;
            let order = compare(&args[0], &args[1], at)?;
            if name != "ne" && !matches!((&args[0], &args[1]), (Value::Number(_), _) | (Value::String(_), _)) {
                return fail(at, format!("error calling {name}: invalid type for comparison"));
            }
            Value::Bool(match name {
                "ne" => order.is_ne(),
                "lt" => order.is_lt(),
                "le" => order.is_le(),
                "gt" => order.is_gt(),
                _ => order.is_ge(),
            })
        }
        "html" => Value::from(html_escape(&go_sprint(args))),
        "js" => Value::from(js_escape(&go_sprint(args))),
        "urlquery" => Value::from(query_escape(&go_sprint(args))),
        _ => return fail(at, format!("function \"{name}\" is not supported in provisioning templates")),
    })
}

fn compare(a: &Value, b: &Value, at: usize) -> Result<std::cmp::Ordering, Failure> {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            Ok(x.as_f64().unwrap_or(0.0).partial_cmp(&y.as_f64().unwrap_or(0.0)).unwrap_or(Ordering::Equal))
        }
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        (Value::Null, Value::Null) => Ok(Ordering::Equal),
        _ => fail(at, format!("incompatible types for comparison: {} and {}", go_type(a), go_type(b))),
    }
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
fn go_sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 && !arg.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        out.push_str(&go_text(arg));
    }
    out
}

/// A subset of Go's `fmt.Sprintf`: `%v %s %d %q %x %X %t %f %%`, with a width like `%02d`.
/// `max` bounds widths and precisions: `%099999999999999d` is an error, not a padding.
fn go_printf(format: &str, args: &[Value], max: usize) -> Result<String, String> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() || d == '-' || d == '.' {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        let (width_spec, precision_spec) = spec.split_once('.').unwrap_or((&spec, ""));
        let number = |digits: &str| -> Result<usize, String> {
            let digits = digits.trim_start_matches(['-', '0']);
            match digits.parse::<usize>() {
                _ if digits.is_empty() => Ok(0),
                Ok(n) if n <= max => Ok(n),
                _ => Err(format!("printf: width or precision {digits} is over {max}, the most one rendering may make")),
            }
        };
        let (width, precision) = (number(width_spec)?, number(precision_spec)?);
        let text = match (verb, arg) {
            ('d', Value::Number(n)) => format!("{}", n.as_f64().unwrap_or(0.0) as i64),
            ('x', Value::String(s)) => hex::encode(s),
            ('x', Value::Number(n)) => format!("{:x}", n.as_f64().unwrap_or(0.0) as i64),
            ('X', Value::Number(n)) => format!("{:X}", n.as_f64().unwrap_or(0.0) as i64),
            ('q', Value::String(s)) => serde_json::to_string(s).unwrap_or_default(),
            ('f', Value::Number(n)) => {
                let precision = if spec.contains('.') { precision } else { 6 };
                format!("{:.*}", precision, n.as_f64().unwrap_or(0.0))
            }
            ('v' | 's' | 't', v) => go_text(v),
            (verb, v) => format!("%!{verb}({}={})", go_type(v), go_text(v)),
        };
        let pad = width.saturating_sub(text.chars().count());
        if spec.starts_with('-') {
            out.push_str(&text);
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            let fill = if spec.starts_with('0') && verb != 's' { '0' } else { ' ' };
            out.extend(std::iter::repeat_n(fill, pad));
            out.push_str(&text);
        }
        if out.len() > max {
            return Err(format!("printf made over {max} bytes, the most one rendering may make"));
        }
    }
    let extra: Vec<String> = args.map(|a| format!("{}={}", go_type(a), go_text(a))).collect();
    if !extra.is_empty() {
        let _ = write!(out, "%!(EXTRA {})", extra.join(", "));
    }
    Ok(out)
}

fn print_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("<no value>"),
        other => out.push_str(&go_text(other)),
    }
}

/// How Go's `fmt` prints a JSON-decoded value with `%v`.
pub fn go_text(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_float(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_text).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => go_map(m),
    }
}

fn go_map(m: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    let items: Vec<String> = keys.into_iter().map(|k| format!("{k}:{}", go_text(&m[k]))).collect();
    format!("map[{}]", items.join(" "))
}

/// Go's `%v` of a float64: the shortest digits that read back the same, in `%e` form when the
/// exponent is below -4 or at least 6 (`1e+06`, `1e-05`), as `strconv`'s shortest `'g'` does.
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..6).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    let text = format!("{f}");
    text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
}

/// Go's HTML escaping (`template.HTMLEscapeString`, and `html.EscapeString` but for NUL).
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            b => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(template: &str, data: Value) -> Result<String, TemplateError> {
        Template::parse(template)?.render(&data)
    }

    #[test]
    fn fields_index_and_the_reference_templates_conditionals() {
        let data = json!({"hostname": "node-0001", "role": "controller", "index": 1.0, "request": {"query": {"mac": "52:54:00:00:00:01"}, "raw_query": "mac=52-54"}});
        let t = "h={{.hostname}} i={{.index}} q={{.request.query.mac}} raw={{.request.raw_query}}\nstage={{if index . \"stage\"}}{{.stage}}{{else}}install{{end}}";
        assert_eq!(
            render(t, data.clone()).unwrap(),
            "h=node-0001 i=1 q=52:54:00:00:00:01 raw=mac=52-54\nstage=install"
        );
        let mut installed = data;
        installed["stage"] = json!("installed");
        assert!(render(t, installed).unwrap().ends_with("stage=installed"));
    }

    #[test]
    fn a_missing_key_is_an_error_with_its_position_but_index_gives_nothing() {
        let err = render("line one\n  {{.hostname}}", json!({"role": "worker"})).unwrap_err();
        assert_eq!((err.line, err.column), (2, 5));
        assert!(err.message.contains("no entry for key \"hostname\""), "{err}");
        assert_eq!(render("[{{index . \"x\"}}]", json!({})).unwrap(), "[<no value>]");
    }

    #[test]
    fn control_structures_variables_and_pipelines() {
        let data =
            json!({"nodes": ["a", "b"], "labels": {"z": "1", "a": "2"}, "n": 3.0, "empty": [], "who": {"name": "x"}});
        assert_eq!(render("{{range $i, $n := .nodes}}{{$i}}={{$n}};{{end}}", data.clone()).unwrap(), "0=a;1=b;");
        assert_eq!(render("{{range $k, $v := .labels}}{{$k}}:{{$v}} {{end}}", data.clone()).unwrap(), "a:2 z:1 ");
        assert_eq!(render("{{range .empty}}x{{else}}none{{end}}", data.clone()).unwrap(), "none");
        assert_eq!(render("{{with .who}}{{.name}}/{{$.n}}{{end}}", data.clone()).unwrap(), "x/3");
        assert_eq!(
            render("{{$x := .n}}{{if gt $x 2.0}}big{{else if eq $x 2.0}}two{{else}}small{{end}}", data.clone())
                .unwrap(),
            "big"
        );
        assert_eq!(
            render("{{.nodes | len}} {{printf \"%03d-%s\" .n \"x\"}} {{\"a b\" | urlquery}}", data.clone()).unwrap(),
            "2 003-x a+b"
        );
        assert_eq!(
            render("{{if and .n (not .empty)}}yes{{end}} {{or .empty \"fallback\"}}", data.clone()).unwrap(),
            "yes fallback"
        );
        assert_eq!(render("a  {{- /* a comment */ -}}  b {{- \"c\" }}", data).unwrap(), "abc");
    }

    #[test]
    fn numbers_print_as_go_prints_float64() {
        for (value, text) in [
            (1.0, "1"),
            (1.5, "1.5"),
            (999999.0, "999999"),
            (1e6, "1e+06"),
            (0.0001, "0.0001"),
            (123456789.0, "1.23456789e+08"),
            (0.00001, "1e-05"),
            (-2.0, "-2"),
        ] {
            assert_eq!(go_float(value), text, "{value}");
        }
        assert_eq!(go_text(&json!({"b": [1.0, "x"], "a": true})), "map[a:true b:[1 x]]");
    }

    #[test]
    fn parse_errors_name_the_place_and_the_problem() {
        let err = Template::parse("ok\n{{if .x}}never closed").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("needs {{end}}"), "{err}");
        let err = Template::parse("{{.x").unwrap_err();
        assert!(err.message.contains("unclosed action"), "{err}");
        let err = Template::parse("{{nosuch .x}}").unwrap_err();
        assert!(err.message.contains("\"nosuch\" not defined"), "{err}");
        let err = Template::parse("{{end}}").unwrap_err();
        assert!(err.message.contains("unexpected {{end}}"), "{err}");
        let err = Template::parse("{{template \"x\"}}").unwrap_err();
        assert!(err.message.contains("not supported"), "{err}");
        // Found by fuzzing: a string whose last byte is a backslash.
        let err = Template::parse("{{printf \"\\").unwrap_err();
        assert!(err.message.contains("unterminated quoted string"), "{err}");
    }

    #[test]
    fn rendering_is_bounded_in_steps_bytes_and_nesting_with_the_place_it_stopped() {
        // Each of these took the process down or wedged a worker before there were limits.
        let err = render("a\n  {{range 1000000000000000}}{{end}}", json!({})).unwrap_err();
        assert_eq!((err.line, err.column), (2, 11), "{err}");
        assert!(err.message.contains("stopped after 1000000 steps"), "{err}");
        let err = render("{{printf \"%099999999999999d\" 1}}", json!({})).unwrap_err();
        assert!(err.message.contains("width or precision 99999999999999 is over"), "{err}");
        let err = render("{{printf \"%.99999999999f\" 1.5}}", json!({})).unwrap_err();
        assert!(err.message.contains("is over"), "{err}");
        let err = render("{{range 200000}}0123456789abcdefghij0123456789{{end}}", json!({})).unwrap_err();
        assert!(err.message.contains("the output is over 4194304 bytes"), "{err}");
        // Doubling a variable never prints, but every value a function makes is bounded too.
        let err = render("{{$x := \"ab\"}}{{range 40}}{{$x = printf \"%s%s\" $x $x}}{{end}}", json!({})).unwrap_err();
        assert!(err.over_limit && err.message.contains("printf made over 4194304 bytes"), "{err}");
        let err = render("{{range 1000}}{{range 1000}}{{range 1000}}{{end}}{{end}}{{end}}", json!({})).unwrap_err();
        assert!(err.message.contains("steps"), "{err}");
        let deep = "{{if 1}}".repeat(200) + &"{{end}}".repeat(200);
        let err = Template::parse(&deep).unwrap_err();
        assert!(err.message.contains("nest more than 100 deep"), "{err}");
        let chained = "{{if 0}}".to_string() + &"{{else if 0}}".repeat(200) + "{{end}}";
        assert!(Template::parse(&chained).unwrap_err().message.contains("nest more than"));
        let parens = "{{".to_string() + &"(".repeat(200) + "1" + &")".repeat(200) + "}}";
        assert!(Template::parse(&parens).unwrap_err().message.contains("parentheses nest"));
        // Time is a limit of its own: a rendering that could go on stops when its time is up.
        let slow = Template::parse("{{range 100000000}}{{$x := $}}{{end}}").unwrap();
        let limits = Limits { steps: u64::MAX, time: Duration::from_millis(50), ..Limits::default() };
        let err = slow.render_within(&json!({"a": "b"}), limits).unwrap_err();
        assert!(err.message.contains("the longest one rendering may take"), "{err}");
        // Within the limits, the same constructs render as before.
        assert_eq!(render("{{range 3}}{{.}}{{end}} {{printf \"%05d\" 42}}", json!({})).unwrap(), "012 00042");
    }

    #[test]
    fn a_sample_rendering_walks_past_keys_that_are_missing() {
        let check = |t: &str, sample: Value| Template::parse(t).unwrap().check(&sample);
        let err =
            check("{{.hostname}}-{{if .extra.deep}}x{{else}}{{range 1e15}}{{end}}{{end}}", json!({})).unwrap_err();
        assert!(err.over_limit && err.message.contains("steps"), "{err}");
        // What a missing key leads to depends on the data: not an error yet, and no text to use.
        assert_eq!(check("{{len .a}}", json!({})), Ok(None));
        assert_eq!(check("[{{.a}}]", json!({})), Ok(None));
        // With every key there, an error is the template's own, and the text is what boot serves.
        assert!(check("{{len 3}}", json!({})).is_err());
        assert_eq!(check("[{{.a}}]", json!({"a": 1})), Ok(Some("[1]".into())));
    }
}
