package protocol

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/staydown/staydown/protocol/pb"
)

// Labels is the controlled vocabulary of content labels, as slugs. "other"
// must carry free text; the others must not.
var Labels = []string{
	"imminent-credible-threat",
	"graphic-violence",
	"glorification-of-terrorist-acts",
	"recruitment-and-instruction",
	"attacker-manifesto",
	"branded-terrorist-publication",
	"other",
}

// AllowCategories is the vocabulary of allowlist categories.
var AllowCategories = []string{"counter-speech", "news", "research", "other"}

// Limits on free text, in bytes.
const (
	MaxLabelText  = 256
	MaxReasonLen  = 1024
	MaxCaseRefLen = 256
	MaxReplyText  = 4096
	MaxLabels     = 16
	MaxSignals    = 1000
)

func inVocab(vocab []string, s string) bool {
	for _, v := range vocab {
		if v == s {
			return true
		}
	}
	return false
}

// ParseLabel parses a label as a user writes it: a slug, or
// "other:FREE TEXT".
func ParseLabel(s string) (*pb.Label, error) {
	slug, text, _ := strings.Cut(s, ":")
	l := &pb.Label{Slug: strings.TrimSpace(slug), Text: strings.TrimSpace(text)}
	return l, CheckLabel(l)
}

// FormatLabel is the inverse of ParseLabel.
func FormatLabel(l *pb.Label) string {
	if l.Text != "" {
		return l.Slug + ":" + l.Text
	}
	return l.Slug
}

// CheckLabel checks a label against the vocabulary.
func CheckLabel(l *pb.Label) error {
	switch {
	case l == nil:
		return fmt.Errorf("%w: missing", ErrLabel)
	case !inVocab(Labels, l.Slug):
		return fmt.Errorf("%w: %q is not in the vocabulary; use one of %s (other:TEXT for anything else)", ErrLabel, l.Slug, strings.Join(Labels, ", "))
	case l.Slug == "other" && l.Text == "":
		return fmt.Errorf("%w: \"other\" needs free text, written other:TEXT", ErrLabel)
	case l.Slug != "other" && l.Text != "":
		return fmt.Errorf("%w: only \"other\" carries free text, %q does not", ErrLabel, l.Slug)
	case len(l.Text) > MaxLabelText:
		return fmt.Errorf("%w: text is %d bytes, limit %d", ErrLabel, len(l.Text), MaxLabelText)
	case !utf8.ValidString(l.Text):
		return fmt.Errorf("%w: text is not valid UTF-8", ErrLabel)
	}
	return nil
}
