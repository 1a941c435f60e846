import YAML from "yaml"
import { PRESETS } from "./config.ts"

/**
 * configs/*.yaml, written from the presets in config.ts (`npm run configs`): the YAML a user reads
 * or starts a file of their own from is the preset itself, every key; a test fails when they drift.
 */
export const PRESET_FILES: Readonly<Record<string, { readonly file: string; readonly about: string }>> = {
  small: {
    file: "configs/small.yaml",
    about: `The small-model preset (the default): what the small tfjs policy needs to learn on a laptop CPU in
minutes. Against the paper's values (configs/virl_vl.yaml): learning rates 3e-4 (PPO) and 3e-3 →
3e-4 (SFT) instead of 1e-7, mini-batches of 32 instead of 1 × 128 accumulation, global-norm clip
1 instead of 0.01, sampling temperature 1 instead of 0.2, 8 environments in lock-step, and 96-px
views resized to 32 px instead of 640 → 1200.
  npx virl train sft --config configs/small.yaml --out DIR`
  },
  paper: {
    file: "configs/virl_vl.yaml",
    about: `The paper's V-IRL VL training configuration, with the reference's key names
(bojieli/SFTvsRL rl/configs/llama_virl_vl.yaml; the scripts' num_steps 256, num_updates 15,
lr 1e-7). Values for an 11B-parameter VLM: with the small tfjs policy use configs/small.yaml.
  npx virl train ppo --config configs/virl_vl.yaml --init CHECKPOINT --out DIR`
  }
}

/** A preset as its YAML file: what it is, `preset:` its name, then every key with its value. */
export const presetYaml = (name: string): string => {
  const preset = PRESETS[name]
  const about = PRESET_FILES[name]?.about
  if (preset === undefined || about === undefined) throw new RangeError(`no preset ${JSON.stringify(name)}: ${Object.keys(PRESETS).join(", ")}`)
  const header = [...about.split("\n").map((line) => `# ${line}`), "# Written from src/app/config.ts by `npm run configs`; edit the preset there."]
  return `${header.join("\n")}\n${YAML.stringify({ preset: name, ...preset })}`
}
