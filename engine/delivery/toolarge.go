package delivery

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/tendhealth/tend/notify"
)

// noteTooLarge counts and logs, at error level, a push refused as too large:
// the payload or its encoding outgrew what the provider accepts, which
// retrying or disabling the device cannot fix. It logs ids only.
func (dl *Service) noteTooLarge(ctx context.Context, sendErr error, platform, deviceID string, notificationID uuid.UUID) {
	if !errors.Is(sendErr, notify.ErrPayloadTooLarge) {
		return
	}
	dl.metrics.TooLarge.WithLabelValues(platform).Inc()
	perr := notify.Classify(sendErr)
	dl.log.ErrorContext(ctx, "push refused as too large: the payload outgrew the provider's limit",
		"platform", platform, "device_id", deviceID, "notification_id", notificationID,
		"status", perr.Status, "code", perr.Code)
}
