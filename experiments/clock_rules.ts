/**
 * A rule-OOD the paper never tried: the study of sft_vs_rl.ts with a fourth evaluation suite in
 * which turns are named on a clock face ("turn_direction(3 o'clock)" for right) — the plugin is
 * src/plugins/action-space/clock.ts, the suite one value below.
 *
 *   npx virl run experiments/clock_rules.ts --quick
 */
import type { SuiteSpec } from "../src/core/experiment.ts"
import * as Clock from "../src/plugins/action-space/clock.ts"
import study from "./sft_vs_rl.ts"

const clockOod: SuiteSpec = { name: "clock-ood", title: "Clock OOD", dataset: "eval", actionSpace: Clock.layer }

export default { ...study, name: "clock_rules", suites: [...study.suites, clockOod] }
