package projections

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// foldSpecial maps letters that Unicode does not decompose into a base letter
// plus combining marks, so that folding still reaches plain ASCII for them.
var foldSpecial = strings.NewReplacer(
	"ß", "ss", "ẞ", "ss", "æ", "ae", "Æ", "ae", "œ", "oe", "Œ", "oe",
	"ø", "o", "Ø", "o", "ł", "l", "Ł", "l", "đ", "d", "Đ", "d",
	"þ", "th", "Þ", "th", "ı", "i",
)

// Fold is THE search normalisation shared by every backend: lower case,
// compatibility-decomposed, combining marks removed, a few special letters
// spelled out (ß -> ss). Stored search text and query text both go through
// it, so `muller` finds `Müller GmbH` on PostgreSQL and SQLite alike.
func Fold(s string) string {
	s = foldSpecial.Replace(s)
	s = norm.NFKD.String(s)
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// LikePattern turns folded query text into a LIKE pattern for substring
// search, escaping LIKE's wildcards with a backslash (ESCAPE '\').
func LikePattern(folded string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(folded) + "%"
}
