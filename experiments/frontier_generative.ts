/**
 * The frontier study (frontier.ts) with the policy that writes its answers token by token
 * (docs/generative.md): the same bases' recipe, suites, seeds, six evaluation points, validation
 * choices and claim family, the generator in place of the policy that chooses among listed
 * answers. Its answers go to the parser and verifier as written, so each suite also counts the
 * answers that name no action (`answers` in its metrics).
 *
 * The same tuning budget for every method, four configurations each:
 * - SFT at four learning rates (10 epochs each);
 * - PPO with either reward, and RFT: learning rate {1e-5, 3e-5} × sampling temperature {0.2 (the
 *   paper's), 1}. A probe on one H100 (docs/generative.md) bounds the rates: at 1e-5 PPO stays
 *   within a point of its start over 15 updates, at 1e-4 half its answers were unparsable by
 *   update 10. The clip stays at the reference's 0.1. KL to the base is measured at temperature 1
 *   for every arm (kl_config.temperature), so that arms sampling at 0.2 and at 1 are comparable.
 *
 *   npx virl run experiments/frontier_generative.ts                                  # V-IRL-VL: 3 bases × 3 seeds
 *   npx virl run experiments/frontier_generative.ts --env_config.language_only=true  # V-IRL-L: no image (bases of its own)
 *   npx virl run experiments/frontier_generative.ts --quick --seeds 1                # a pipeline check on 2 cores
 *
 * Sized for a GPU (`--backend webgpu`, docs/gpu.md): a seed is 18 arms of the generator.
 */
import { configurations, experiment } from "../src/core/experiment.ts"
import * as Outcome from "../src/plugins/reward/outcome.ts"
import * as Process from "../src/plugins/reward/process.ts"
import { label, onFooting, onPolicy, START } from "./footing.ts"
import { FRONTIER } from "./frontier.ts"
import { GENERATIVE_QUICK, generativeLayers } from "./generative-footing.ts"

/** SFT from the start: four rates, each decaying to a tenth over 10 epochs. */
const SFT = configurations(
  "sft",
  { recipe: { kind: "sft", from: "init" }, config: { "sft_config.epochs": 10 }, quick: { "sft_config.epochs": 3 } },
  [1e-4, 3e-4, 1e-3, 3e-3].map((lr) => ({ label: label(lr), config: { "sft_config.init_lr": lr, "sft_config.end_lr": lr / 10 } }))
)

/** Learning rate (decaying as frontier.ts's PPO and RFT rates do) × sampling temperature. */
const ON_POLICY = [1e-5, 3e-5].flatMap((lr) =>
  [0.2, 1].map((t) => ({ label: `${label(lr)}-t${t}`, config: { ...onPolicy(lr), "generation_config.temperature": t } }))
)

export default experiment(
  onFooting({
    name: "frontier_generative",
    description:
      "The frontier study with the generative policy: SFT, PPO (per-answer reward), PPO (episode-end reward) and RFT from one format initialisation of three bases, four configurations each",
    layers: generativeLayers,
    arms: [
      ...START,
      ...SFT,
      ...configurations("ppo-process", { recipe: { kind: "ppo", from: "init" }, layers: { reward: Process.layer } }, ON_POLICY),
      ...configurations("ppo-outcome", { recipe: { kind: "ppo", from: "init" }, layers: { reward: Outcome.layer } }, ON_POLICY),
      ...configurations("rft", { recipe: { kind: "rft", from: "init", samples: "base" } }, ON_POLICY)
    ],
    frontier: FRONTIER,
    // KL to the base at one temperature for every arm, whatever it samples at: comparable along the frontiers
    config: { "kl_config.temperature": 1 },
    quick: { ...GENERATIVE_QUICK, "eval_config.num_traj": 6, num_updates: 3 }
  })
)
