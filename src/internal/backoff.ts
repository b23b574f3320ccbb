/**
 * The default backoff of restarts (and of spare starts): exponential from
 * 100 ms, doubling, capped at 10 s, jittered by ±20 %. See
 * `Worker.defaultRestartSchedule`.
 */
import { Duration, Effect, Schedule } from "effect"

export const defaultRestartSchedule: Schedule.Schedule<Duration.Duration> = Schedule.exponential("100 millis").pipe(
  Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.seconds(10)))),
  Schedule.jittered
)
