package suite

// InitLeftOut is how a suite fails when its init case did not run although
// nothing failed: a go test -run pattern left it out, and every other case
// needs the component it initialises.
const InitLeftOut = "the init case did not run (left out by a -run pattern?): every case needs it; include it, as in -run 'Test/(init|cases)'"
