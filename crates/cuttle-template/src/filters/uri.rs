//! `UriPart`: one component of a URI, as .NET's `System.Uri` reports it (on Windows, which is
//! where upstream's expectations come from: `/docs` is a relative URI there, not a file path).
//! Errors are written into the output as text rather than failing the token.

struct AbsoluteUri {
    scheme: String,
    user_info: String,
    host: String,
    explicit_port: Option<u16>,
    path: String,
    query: String,
    fragment: String,
    has_authority: bool,
}

fn default_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        "ftp" => 21,
        "sftp" | "ssh" => 22,
        "telnet" => 23,
        "smtp" | "mailto" => 25,
        "gopher" => 70,
        "news" | "nntp" => 119,
        "ldap" => 389,
        "net.tcp" => 808,
        _ => return None,
    })
}

/// Escapes what .NET escapes when it canonicalises a path, query or fragment.
fn escape_component(text: &str) -> String {
    let mut output = String::with_capacity(text.len());
    for character in text.chars() {
        if character.is_ascii_graphic()
            && !matches!(
                character,
                '"' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}'
            )
        {
            output.push(character);
        } else {
            let mut buffer = [0u8; 4];
            for byte in character.encode_utf8(&mut buffer).bytes() {
                output.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    output
}

fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut position = 0;
    while position < bytes.len() {
        if bytes[position] == b'%' && position + 2 < bytes.len() {
            let high = char::from(bytes[position + 1]).to_digit(16);
            let low = char::from(bytes[position + 2]).to_digit(16);
            if let (Some(high), Some(low)) = (high, low) {
                decoded.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                position += 3;
                continue;
            }
        }
        decoded.push(bytes[position]);
        position += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn parse_absolute(text: &str) -> Option<AbsoluteUri> {
    let trimmed = text.trim();
    // A Windows drive path or UNC path is a file URI.
    let drive = trimmed.as_bytes();
    if drive.len() >= 3
        && drive[0].is_ascii_alphabetic()
        && drive[1] == b':'
        && matches!(drive[2], b'\\' | b'/')
    {
        return Some(AbsoluteUri {
            scheme: "file".to_string(),
            user_info: String::new(),
            host: String::new(),
            explicit_port: None,
            path: format!("/{}", trimmed.replace('\\', "/")),
            query: String::new(),
            fragment: String::new(),
            has_authority: true,
        });
    }
    if let Some(unc) = trimmed.strip_prefix("\\\\") {
        let (host, rest) = unc.split_once('\\').unwrap_or((unc, ""));
        return Some(AbsoluteUri {
            scheme: "file".to_string(),
            user_info: String::new(),
            host: host.to_lowercase(),
            explicit_port: None,
            path: format!("/{}", rest.replace('\\', "/")),
            query: String::new(),
            fragment: String::new(),
            has_authority: true,
        });
    }
    let colon = trimmed.find(':')?;
    let scheme = &trimmed[..colon];
    let mut scheme_characters = scheme.chars();
    if !scheme_characters.next()?.is_ascii_alphabetic()
        || !scheme_characters.all(|character| {
            character.is_ascii_alphanumeric() || matches!(character, '+' | '-' | '.')
        })
    {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let rest = &trimmed[colon + 1..];
    let (rest, fragment) = match rest.find('#') {
        Some(hash) => (&rest[..hash], rest[hash..].to_string()),
        None => (rest, String::new()),
    };
    let (rest, query) = match rest.find('?') {
        Some(question) => (&rest[..question], rest[question..].to_string()),
        None => (rest, String::new()),
    };
    let Some(after_slashes) = rest.strip_prefix("//") else {
        return Some(AbsoluteUri {
            scheme,
            user_info: String::new(),
            host: String::new(),
            explicit_port: None,
            path: rest.to_string(),
            query,
            fragment,
            has_authority: false,
        });
    };
    let (authority, path) = match after_slashes.find('/') {
        Some(slash) => (&after_slashes[..slash], &after_slashes[slash..]),
        None => (after_slashes, ""),
    };
    let (user_info, host_and_port) = match authority.rfind('@') {
        Some(at) => (&authority[..at], &authority[at + 1..]),
        None => ("", authority),
    };
    let (host, explicit_port) = if host_and_port.starts_with('[') {
        let close = host_and_port.find(']')?;
        let port_text = host_and_port[close + 1..].strip_prefix(':');
        (
            &host_and_port[..=close],
            match port_text {
                Some(port) => Some(port.parse::<u16>().ok()?),
                None => None,
            },
        )
    } else {
        match host_and_port.rsplit_once(':') {
            Some((host, port)) if !port.is_empty() => (host, Some(port.parse::<u16>().ok()?)),
            Some((host, _)) => (host, None),
            None => (host_and_port, None),
        }
    };
    if host.is_empty() && scheme != "file" {
        return None;
    }
    let path = if path.is_empty() {
        "/".to_string()
    } else {
        path.to_string()
    };
    Some(AbsoluteUri {
        scheme,
        user_info: user_info.to_string(),
        host: host.to_lowercase(),
        explicit_port,
        path,
        query,
        fragment,
        has_authority: true,
    })
}

impl AbsoluteUri {
    fn port(&self) -> i32 {
        self.explicit_port
            .map(i32::from)
            .or_else(|| default_port(&self.scheme).map(i32::from))
            .unwrap_or(-1)
    }

    fn is_default_port(&self) -> bool {
        match (self.explicit_port, default_port(&self.scheme)) {
            (None, _) => true,
            (Some(explicit), Some(default)) => explicit == default,
            (Some(_), None) => false,
        }
    }

    fn authority(&self) -> String {
        if self.is_default_port() {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port())
        }
    }

    fn absolute_path(&self) -> String {
        escape_component(&self.path)
    }

    fn absolute_uri(&self) -> String {
        let fragment = escape_component(&self.fragment);
        let query = escape_component(&self.query);
        if !self.has_authority {
            return format!("{}:{}{query}{fragment}", self.scheme, self.absolute_path());
        }
        let user_info = if self.user_info.is_empty() {
            String::new()
        } else {
            format!("{}@", self.user_info)
        };
        format!(
            "{}://{user_info}{}{}{query}{fragment}",
            self.scheme,
            self.authority(),
            self.absolute_path()
        )
    }

    fn host_name_type(&self) -> &'static str {
        if self.host.starts_with('[') {
            "IPv6"
        } else if self.host.parse::<std::net::Ipv4Addr>().is_ok() {
            "IPv4"
        } else if self.host.is_empty() {
            "Basic"
        } else if self.host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|character| character.is_alphanumeric() || character == '-')
        }) {
            "Dns"
        } else {
            "Basic"
        }
    }

    fn is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        (self.scheme == "file" && self.host.is_empty())
            || host == "localhost"
            || host == "::1"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|address| address.is_loopback())
    }

    fn local_path(&self) -> String {
        if self.scheme != "file" {
            return unescape(&self.path);
        }
        let windows_path = unescape(&self.path).replace('/', "\\");
        if self.host.is_empty() {
            windows_path.trim_start_matches('\\').to_string()
        } else {
            format!("\\\\{}{windows_path}", self.host)
        }
    }
}

pub(super) fn uri_part(input: Option<&str>, options: &[String]) -> Option<String> {
    let input = input?;
    let Some(part) = options.first() else {
        return Some("[UriPart error: no argument given]".to_string());
    };
    let lower_part = part.to_lowercase();
    const SUPPORTED: [&str; 20] = [
        "absolutepath",
        "absoluteuri",
        "authority",
        "dnssafehost",
        "fragment",
        "host",
        "hostandport",
        "hostnametype",
        "isabsoluteuri",
        "isdefaultport",
        "isfile",
        "isloopback",
        "isunc",
        "path",
        "pathandquery",
        "port",
        "query",
        "scheme",
        "schemeandserver",
        "userinfo",
    ];
    if !SUPPORTED.contains(&lower_part.as_str()) {
        return Some(format!(
            "[UriPart {part} error: argument '{part}' not supported]"
        ));
    }
    let Some(uri) = parse_absolute(input) else {
        if lower_part == "isabsoluteuri" {
            return Some("false".to_string());
        }
        return Some(format!(
            "[UriPart {part} error: This operation is not supported for a relative URI.]"
        ));
    };
    let scheme_and_server = || {
        let port = if uri.is_default_port() {
            String::new()
        } else {
            format!(":{}", uri.port())
        };
        format!("{}://{}{port}", uri.scheme, uri.host)
    };
    Some(match lower_part.as_str() {
        "absolutepath" => uri.absolute_path(),
        "absoluteuri" => uri.absolute_uri(),
        "authority" => uri.authority(),
        "dnssafehost" => uri
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        "fragment" => escape_component(&uri.fragment),
        "host" => uri.host.clone(),
        "hostandport" => {
            if uri.port() < 0 {
                uri.host.clone()
            } else {
                format!("{}:{}", uri.host, uri.port())
            }
        }
        "hostnametype" => uri.host_name_type().to_string(),
        "isabsoluteuri" => "true".to_string(),
        "isdefaultport" => uri.is_default_port().to_string(),
        "isfile" => (uri.scheme == "file").to_string(),
        "isloopback" => uri.is_loopback().to_string(),
        "isunc" => (uri.scheme == "file" && !uri.host.is_empty()).to_string(),
        "path" => uri.local_path(),
        "pathandquery" => format!("{}{}", uri.absolute_path(), escape_component(&uri.query)),
        "port" => uri.port().to_string(),
        "query" => escape_component(&uri.query),
        "scheme" => uri.scheme.clone(),
        "schemeandserver" => scheme_and_server(),
        _ => uri.user_info.clone(),
    })
}
