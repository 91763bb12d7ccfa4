// Command greeter-v2 is release v2 of the example service of
// docs/releases.md: it greets user 1 by users.display_name, which the
// expand migration 2 adds, and no longer reads users.name, which the
// contract migration 3 drops.
package main

import "github.com/ferrydb/ferry/examples/greeter/internal/greeter"

func main() {
	greeter.Main("v2", "SELECT display_name FROM users WHERE id = 1")
}
