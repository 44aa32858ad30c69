package docker

import "errors"

// joinErrors is errors.Join, unwrapped when there is only one, so a single
// typed error keeps its plain message.
func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}
