package replica

// Status of an attestation (SPEC 10).
type Status string

const (
	StatusActive      Status = "active"
	StatusRetracted   Status = "retracted"   // its author withdrew it
	StatusDisputed    Status = "disputed"    // someone claims a false positive
	StatusAllowlisted Status = "allowlisted" // someone allowlisted the signal; never auto-action
)

// StatusOf is the precedence of SPEC 10: retracted > allowlisted >
// disputed > active. The facts come from any log: retracted (a valid
// retraction of the attestation by its author, or for a notice its
// withdrawal by its issuer), allowlisted (an allow entry in force names
// the signal), disputed (a dispute names the attestation's entry).
func StatusOf(retracted, allowlisted, disputed bool) Status {
	switch {
	case retracted:
		return StatusRetracted
	case allowlisted:
		return StatusAllowlisted
	case disputed:
		return StatusDisputed
	default:
		return StatusActive
	}
}

// Matches reports whether an attestation with this status is matched at
// all (shown to a platform as review or block): active or disputed.
func (s Status) Matches() bool { return s == StatusActive || s == StatusDisputed }
