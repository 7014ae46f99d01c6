package config

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// docsHeader opens the documented config file.
const docsHeader = `# mqgate configuration
#
# One "key = value" per line; lines starting with # are comments. A value is
# everything after the first "=", trimmed, taken verbatim: it may contain # and
# = (webhook rules are JSON).
#
# Every key is listed below with its default value, which mqgate has built in:
# it runs without this file, and a key left out keeps its default. A line
# "# key = value" documents a key whose name has a <name> part: copy it, put
# your own name in place of <name> and remove the "#".
#
# Durations: 500ms, 15s, 1m, 2h, 1d; a bare number is seconds.
# Sizes: 64KB, 1MB, 1GB; a bare number is bytes; 1KB = 1024 bytes.
# Booleans: true, false, on, off.
# Addresses: IP:port, [IPv6]:port, a bare port (all interfaces), or off.
#
# Environment variables override this file: MQGATE__ followed by the key in
# upper case with each "." written "__", e.g. MQGATE__MQTT__MAX_PACKET_SIZE=2MB
# or MQGATE__LISTENER__TCP__EXTERNAL=0.0.0.0:1883.
`

// WriteDocs writes the documented config file for Schema (deploy/mqgate.conf):
// a header explaining the syntax, then the keys grouped by their first
// segment, each with its doc line, its type and range, and its default.
// Pattern keys are written as comments, with their <name> segments.
func WriteDocs(w io.Writer) error {
	return writeDocs(w, Schema)
}

func writeDocs(w io.Writer, schema []Key) error {
	var b bytes.Buffer
	b.WriteString(docsHeader)
	for _, g := range groups(schema) {
		title := groupTitle(g.name)
		if title == "" {
			title = g.name
		}
		rule := "##" + strings.Repeat("-", 70) + "\n"
		fmt.Fprintf(&b, "\n%s## %s\n%s", rule, title, rule)
		for _, k := range g.keys {
			fmt.Fprintf(&b, "\n# %s\n# %s\n", k.Doc, typeDoc(k))
			if strings.Contains(k.Name, "<") {
				b.WriteString("# ")
			}
			b.WriteString(k.Name + " =")
			if k.Default != "" {
				b.WriteString(" " + k.Default)
			}
			b.WriteString("\n")
		}
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("config: write docs: %w", err)
	}
	return nil
}

// group is the keys sharing a first segment ("" for keys without a dot).
type group struct {
	name string
	keys []*Key
}

// groups splits schema into groups, in order of first appearance, each
// keeping the schema order of its keys.
func groups(schema []Key) []group {
	var gs []group
	at := map[string]int{}
	for i := range schema {
		name, _, ok := strings.Cut(schema[i].Name, ".")
		if !ok {
			name = ""
		}
		j, seen := at[name]
		if !seen {
			j = len(gs)
			at[name] = j
			gs = append(gs, group{name: name})
		}
		gs[j].keys = append(gs[j].keys, &schema[i])
	}
	return gs
}

// typeDoc describes the values k accepts, as one sentence.
func typeDoc(k *Key) string {
	switch k.Kind {
	case Int:
		if k.Max != 0 {
			return fmt.Sprintf("Type: integer, %d..%d.", k.Min, k.Max)
		}
		return fmt.Sprintf("Type: integer, %d or more.", k.Min)
	case Bool:
		return "Type: boolean (true, false, on, off)."
	case Duration:
		return "Type: duration (e.g. 500ms, 15s, 1m, 2h, 1d)."
	case Bytesize:
		switch {
		case k.Max != 0:
			return fmt.Sprintf("Type: size (e.g. 64KB, 1MB), %d to %d bytes.", k.Min, k.Max)
		case k.Min == 1:
			return "Type: size (e.g. 64KB, 1MB), at least 1 byte."
		case k.Min > 1:
			return fmt.Sprintf("Type: size (e.g. 64KB, 1MB), at least %d bytes.", k.Min)
		}
		return "Type: size (e.g. 64KB, 1MB)."
	case Enum:
		return "Type: one of " + strings.Join(k.Enum, ", ") + "."
	case Addr:
		return "Type: address ([IP]:port, port, or off)."
	}
	return "Type: " + k.Kind.String() + "."
}
