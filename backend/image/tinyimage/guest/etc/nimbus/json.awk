# json.awk flattens a JSON document into "path<TAB>value" lines, one per
# string, number or boolean ("hostname<TAB>vm1", "public_keys.mykey<TAB>ssh-
# ed25519 AAAA...", "keys.0.data<TAB>..."), so that the boot script can pick
# values with plain awk/grep and never evaluates anything from metadata.
# Escapes are decoded; \n, \r, \t and control characters become spaces so a
# value always stays on one line; \u escapes outside printable ASCII become
# "?". On malformed input it prints what it parsed and exits 1.
# Portable awk (busybox, mawk, gawk): no gawk extensions.

{ doc = doc $0 "\n" }

END {
	n = length(doc)
	i = 1
	err = 0
	parse_value("")
	if (!err) {
		skip_ws()
		if (i <= n)
			err = 1
	}
	exit err
}

function skip_ws(   c) {
	while (i <= n) {
		c = substr(doc, i, 1)
		if (c != " " && c != "\t" && c != "\n" && c != "\r")
			break
		i++
	}
}

function hexval(h,   k, v, d) {
	v = 0
	for (k = 1; k <= length(h); k++) {
		d = index("0123456789abcdef", substr(h, k, 1))
		if (d == 0)
			return -1
		v = v * 16 + d - 1
	}
	return v
}

function parse_string(   out, c, code) {
	i++ # opening quote
	out = ""
	while (i <= n) {
		c = substr(doc, i, 1)
		if (c == "\"") {
			i++
			return out
		}
		if (c == "\\") {
			i++
			c = substr(doc, i, 1)
			if (c == "u") {
				code = hexval(tolower(substr(doc, i + 1, 4)))
				i += 4
				if (code >= 32 && code < 127)
					out = out sprintf("%c", code)
				else if (code == 9 || code == 10 || code == 13)
					out = out " "
				else
					out = out "?"
			} else if (c == "n" || c == "r" || c == "t" || c == "b" || c == "f") {
				out = out " "
			} else {
				out = out c # \" \\ \/
			}
			i++
			continue
		}
		if (index("\t\n\r", c) > 0)
			c = " "
		out = out c
		i++
	}
	err = 1 # unterminated string
	return out
}

function emit(path, value) {
	if (path == "")
		path = "."
	printf "%s\t%s\n", path, value
}

function join(path, key) {
	gsub(/[\t\n\r]/, " ", key)
	return path == "" ? key : path "." key
}

function parse_value(path,   c, key, idx, lit) {
	skip_ws()
	c = substr(doc, i, 1)
	if (c == "{") {
		i++
		skip_ws()
		if (substr(doc, i, 1) == "}") {
			i++
			return
		}
		while (i <= n) {
			skip_ws()
			if (substr(doc, i, 1) != "\"") {
				err = 1
				return
			}
			key = parse_string()
			skip_ws()
			if (substr(doc, i, 1) != ":") {
				err = 1
				return
			}
			i++
			parse_value(join(path, key))
			if (err)
				return
			skip_ws()
			c = substr(doc, i, 1)
			i++
			if (c == "}")
				return
			if (c != ",") {
				err = 1
				return
			}
		}
		err = 1
		return
	}
	if (c == "[") {
		i++
		skip_ws()
		if (substr(doc, i, 1) == "]") {
			i++
			return
		}
		idx = 0
		while (i <= n) {
			parse_value(join(path, idx))
			if (err)
				return
			idx++
			skip_ws()
			c = substr(doc, i, 1)
			i++
			if (c == "]")
				return
			if (c != ",") {
				err = 1
				return
			}
		}
		err = 1
		return
	}
	if (c == "\"") {
		emit(path, parse_string())
		return
	}
	lit = ""
	while (i <= n) {
		c = substr(doc, i, 1)
		if (index("{}[],: \t\r\n", c) > 0)
			break
		lit = lit c
		i++
	}
	if (lit !~ /^(true|false|null|-?[0-9][0-9.eE+-]*)$/) {
		err = 1
		return
	}
	if (lit != "null")
		emit(path, lit)
}
