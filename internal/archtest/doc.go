// Package archtest holds the architecture rules of the repository, written as
// plain Go tests: which layer may import which.
package archtest
