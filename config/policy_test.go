package config

import (
	"reflect"
	"testing"

	"github.com/staydown/staydown/protocol"
)

func TestParsePolicyGood(t *testing.T) {
	tests := []struct {
		name string
		text string
		want Policy
	}{
		{"no table: defaults", "", DefaultPolicy()},
		{"empty table: defaults", "[policy]\n", DefaultPolicy()},
		{"everything", `[policy]
block_min_attesters = 3
pdq_threshold = 24
min_quality = 0
trust = { "nru-demo" = ["*"], "platform-a" = ["graphic-violence", "attacker-manifesto"] }
`, Policy{
			Trust:             map[string][]string{"nru-demo": {"*"}, "platform-a": {"graphic-violence", "attacker-manifesto"}},
			BlockMinAttesters: 3, PDQThreshold: 24, MinQuality: 0, VPDQQueryMatch: 80,
		}},
		{"trust as a sub-table", `[policy]
[policy.trust]
"*" = ["other"]
nru-demo = ["*"]
`, Policy{
			Trust:             map[string][]string{"*": {"other"}, "nru-demo": {"*"}},
			BlockMinAttesters: 2, PDQThreshold: 31, MinQuality: 50, VPDQQueryMatch: 80,
		}},
		{"trust no one", "[policy]\ntrust = {}\n", Policy{Trust: map[string][]string{}, BlockMinAttesters: 2, PDQThreshold: 31, MinQuality: 50, VPDQQueryMatch: 80}},
		{"bounds", "[policy]\nblock_min_attesters = 1\npdq_threshold = 63\nmin_quality = 100\nvpdq_query_match = 100\nvpdq_compared_match = 100\n",
			Policy{BlockMinAttesters: 1, PDQThreshold: 63, MinQuality: 100, VPDQQueryMatch: 100, VPDQComparedMatch: 100}},
		{"video percentages", "[policy]\nvpdq_query_match = 0.5\nvpdq_compared_match = 12.5\n",
			Policy{BlockMinAttesters: 2, PDQThreshold: 31, MinQuality: 50, VPDQQueryMatch: 0.5, VPDQComparedMatch: 12.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseNode("nru/config.toml", []byte(goodConfig+tt.text))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(n.Policy, tt.want) {
				t.Errorf("policy %+v, want %+v", n.Policy, tt.want)
			}
		})
	}
}

func TestParsePolicyErrors(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"not a table", `policy = "strict"`, []string{"policy: want a table", "got a string"}},
		{"unknown key", "[policy]\npdq_treshold = 20\n", []string{"policy: unknown key \"pdq_treshold\"", "did you mean pdq_threshold?"}},
		{"query match zero", "[policy]\nvpdq_query_match = 0\n", []string{"policy.vpdq_query_match: 0 is out of range: want more than 0 to 100"}},
		{"query match above 100", "[policy]\nvpdq_query_match = 100.5\n", []string{"policy.vpdq_query_match: 100.5 is out of range"}},
		{"compared match negative", "[policy]\nvpdq_compared_match = -1\n", []string{"policy.vpdq_compared_match: -1 is out of range: want 0 to 100"}},
		{"compared match string", "[policy]\nvpdq_compared_match = \"80%\"\n", []string{"policy.vpdq_compared_match: want a percentage", "got a string"}},
		{"threshold string", "[policy]\npdq_threshold = \"31\"\n", []string{"policy.pdq_threshold: want an integer (no quotes) from 0 to 63, got a string"}},
		{"threshold high", "[policy]\npdq_threshold = 64\n", []string{"policy.pdq_threshold: 64 is out of range: want 0 to 63"}},
		{"threshold negative", "[policy]\npdq_threshold = -1\n", []string{"policy.pdq_threshold: -1 is out of range"}},
		{"attesters zero", "[policy]\nblock_min_attesters = 0\n", []string{"policy.block_min_attesters: 0 is out of range: want 1 to 1000"}},
		{"quality high", "[policy]\nmin_quality = 101\n", []string{"policy.min_quality: 101 is out of range: want 0 to 100"}},
		{"quality float", "[policy]\nmin_quality = 50.5\n", []string{"policy.min_quality: want an integer", "got a number"}},
		{"trust not a table", "[policy]\ntrust = [\"nru-demo\"]\n", []string{"policy.trust: want a table of member name = [labels]", "got an array"}},
		{"trust bad name", "[policy]\ntrust = { \"NRU\" = [\"*\"] }\n", []string{`policy.trust.NRU: not a member name`, "lower-case"}},
		{"trust labels not array", "[policy]\ntrust = { nru = \"*\" }\n", []string{`policy.trust.nru: want an array of label slugs`, "got a string"}},
		{"trust no labels", "[policy]\ntrust = { nru = [] }\n", []string{`policy.trust.nru: no labels`}},
		{"trust unknown label", "[policy]\ntrust = { nru = [\"gore\"] }\n", []string{`policy.trust.nru: label 1: "gore" is not a label slug`, "graphic-violence"}},
		{"trust label with text", "[policy]\ntrust = { nru = [\"other:x\"] }\n", []string{`label 1: "other:x" is not a label slug`}},
		{"trust label type", "[policy]\ntrust = { nru = [\"*\", 3] }\n", []string{`policy.trust.nru: label 2: want a string in quotes, got the integer 3`}},
		{"first problem by name order", "[policy]\ntrust = { zed = [\"bad\"], abe = [\"worse\"] }\n", []string{`policy.trust.abe: label 1: "worse"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := ParseNode("nru/config.toml", []byte(goodConfig+tt.text))
			if err == nil {
				t.Fatalf("no error; policy %+v", n.Policy)
			}
			wantError(t, err, ErrInvalid, append([]string{"nru/config.toml"}, tt.want...)...)
		})
	}
}

func TestPolicyTrusts(t *testing.T) {
	p := Policy{Trust: map[string][]string{
		"nru":        {"*"},
		"platform-a": {"graphic-violence", "other"},
		"*":          {"attacker-manifesto"},
	}}
	tests := []struct {
		member, label string
		want          bool
	}{
		{"nru", "recruitment-and-instruction", true},
		{"nru", "other:anything", true},
		{"platform-a", "graphic-violence", true},
		{"platform-a", "recruitment-and-instruction", false},
		{"platform-a", "other:beheading video", true}, // trust is by slug
		{"platform-b", "graphic-violence", false},     // not listed
		{"platform-b", "attacker-manifesto", true},    // "*" covers every member
		{"platform-a", "attacker-manifesto", true},
	}
	for _, tt := range tests {
		if got := p.Trusts(tt.member, tt.label); got != tt.want {
			t.Errorf("Trusts(%q, %q) = %v, want %v", tt.member, tt.label, got, tt.want)
		}
	}
	if !DefaultPolicy().Trusts("anyone", "other:x") {
		t.Error("the default policy does not trust everyone")
	}
	if (Policy{Trust: map[string][]string{}}).Trusts("nru", "graphic-violence") {
		t.Error("an empty trust table trusts someone")
	}
}

func TestPolicyCheckMembers(t *testing.T) {
	r, err := protocol.NewRoster("f", []protocol.Member{testMember(t, 0, "nru", protocol.RoleReferral), testMember(t, 1, "platform-a", protocol.RolePlatform)})
	if err != nil {
		t.Fatal(err)
	}
	ok := Policy{Trust: map[string][]string{"nru": {"*"}, "*": {"other"}}}
	if err := ok.CheckMembers("config.toml", r); err != nil {
		t.Errorf("known members: %v", err)
	}
	bad := Policy{Trust: map[string][]string{"nru": {"*"}, "nru-demo": {"*"}}}
	wantError(t, bad.CheckMembers("config.toml", r), ErrInvalid, `config.toml: policy.trust.nru-demo: no member "nru-demo" in the roster`, "nru, platform-a")
}
