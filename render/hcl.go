package render

import (
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// Small helpers over hclwrite. Every literal goes through cty values or
// heredoc, which escape it; raw tokens are only built from identifiers
// that tfIdent produced.

func setStr(b *hclwrite.Body, name, v string) { b.SetAttributeValue(name, cty.StringVal(v)) }
func setInt(b *hclwrite.Body, name string, v int64) {
	b.SetAttributeValue(name, cty.NumberIntVal(v))
}
func setBool(b *hclwrite.Body, name string, v bool) { b.SetAttributeValue(name, cty.BoolVal(v)) }

func setStrs(b *hclwrite.Body, name string, vs []string) {
	if len(vs) == 0 {
		b.SetAttributeValue(name, cty.ListValEmpty(cty.String))
		return
	}
	vals := make([]cty.Value, len(vs))
	for i, v := range vs {
		vals[i] = cty.StringVal(v)
	}
	b.SetAttributeValue(name, cty.ListVal(vals))
}

// block appends a nested block, separated from what precedes it by a blank
// line when the body already has content.
func block(b *hclwrite.Body, typ string, labels ...string) *hclwrite.Body {
	if len(b.Attributes()) > 0 || len(b.Blocks()) > 0 {
		b.AppendNewline()
	}
	return b.AppendNewBlock(typ, labels).Body()
}

// emptyBlock appends a block with no content, written as `typ "label" {}`.
// Labels are ferry's own names, never spec text.
func emptyBlock(b *hclwrite.Body, typ string, labels ...string) {
	if len(b.Attributes()) > 0 || len(b.Blocks()) > 0 {
		b.AppendNewline()
	}
	toks := hclwrite.Tokens{{Type: hclsyntax.TokenIdent, Bytes: []byte(typ)}}
	for _, l := range labels {
		toks = append(toks,
			&hclwrite.Token{Type: hclsyntax.TokenOQuote, Bytes: []byte(`"`), SpacesBefore: 1},
			&hclwrite.Token{Type: hclsyntax.TokenQuotedLit, Bytes: []byte(l)},
			&hclwrite.Token{Type: hclsyntax.TokenCQuote, Bytes: []byte(`"`)},
		)
	}
	b.AppendUnstructuredTokens(append(toks, hclwrite.Tokens{
		{Type: hclsyntax.TokenOBrace, Bytes: []byte("{"), SpacesBefore: 1},
		{Type: hclsyntax.TokenCBrace, Bytes: []byte("}")},
		{Type: hclsyntax.TokenNewline, Bytes: []byte("\n")},
	}...))
}

// traversal is the tokens of a reference like data.nomad_plugin.x.plugin_id.
// Each part must be an identifier (see tfIdent).
func traversal(parts ...string) hclwrite.Tokens {
	t := hcl.Traversal{hcl.TraverseRoot{Name: parts[0]}}
	for _, p := range parts[1:] {
		t = append(t, hcl.TraverseAttr{Name: p})
	}
	return hclwrite.TokensForTraversal(t)
}

// moduleFile is the tokens of file("${path.module}/<name>"); name is one
// of ferry's fixed file names, never spec text.
func moduleFile(name string) hclwrite.Tokens {
	tmpl := hclwrite.Tokens{
		{Type: hclsyntax.TokenOQuote, Bytes: []byte(`"`)},
		{Type: hclsyntax.TokenTemplateInterp, Bytes: []byte(`${`)},
	}
	tmpl = append(tmpl, traversal("path", "module")...)
	tmpl = append(tmpl,
		&hclwrite.Token{Type: hclsyntax.TokenTemplateSeqEnd, Bytes: []byte(`}`)},
		&hclwrite.Token{Type: hclsyntax.TokenQuotedLit, Bytes: []byte("/" + name)},
		&hclwrite.Token{Type: hclsyntax.TokenCQuote, Bytes: []byte(`"`)},
	)
	return hclwrite.TokensForFunctionCall("file", tmpl)
}

// heredoc is the tokens of a <<EOT heredoc whose value is exactly s, which
// must end with a newline. Template sequences are escapes ($${, %%{); a
// heredoc does not interpret backslashes or quotes, so nothing else needs
// escaping. The delimiter is chosen so that no line of s closes it early.
func heredoc(s string) hclwrite.Tokens {
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	delim := "EOT"
	for i := 1; closesHeredoc(s, delim); i++ {
		delim = "EOT" + strings.Repeat("_", i)
	}
	esc := strings.NewReplacer("${", "$${", "%{", "%%{").Replace(s)
	return hclwrite.Tokens{
		{Type: hclsyntax.TokenOHeredoc, Bytes: []byte("<<" + delim + "\n")},
		{Type: hclsyntax.TokenStringLit, Bytes: []byte(esc)},
		{Type: hclsyntax.TokenCHeredoc, Bytes: []byte(delim)},
	}
}

func closesHeredoc(s, delim string) bool {
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) == delim {
			return true
		}
	}
	return false
}

// tfIdent turns a value into a Terraform identifier: letters, digits,
// underscores and dashes, starting with a letter or underscore.
func tfIdent(v string) string {
	var b strings.Builder
	for i, r := range v {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_':
			b.WriteRune(r)
		case (r >= '0' && r <= '9') || r == '-':
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

// formatted returns f's bytes in canonical hclwrite.Format layout, with a
// header comment.
func formatted(f *hclwrite.File, header string) []byte {
	var out []byte
	for _, line := range strings.Split(strings.TrimRight(header, "\n"), "\n") {
		out = append(out, "# "...)
		out = append(out, strings.TrimRight(line, " ")...)
		out = append(out, '\n')
	}
	out = append(out, '\n')
	return hclwrite.Format(append(out, f.Bytes()...))
}
