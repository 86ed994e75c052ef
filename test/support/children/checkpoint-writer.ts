/**
 * A child process for crash tests: saves the same checkpoint folder over and over (step 1, 2, 3, ...), with a
 * GPT-2-sized vocabulary and optimizer state so each write takes long enough to be killed in the middle. Prints
 * "begin N" before and "done N" after each save. Usage: checkpoint-writer.ts DIR
 */
import { saveCheckpoint } from '../../../src/checkpoint/index.ts';
import { validateModelConfig } from '../../../src/core/config.ts';
import { seededTensors } from '../../checkpoint/tiny.ts';

const [dir] = process.argv.slice(2);
const config = validateModelConfig({ vocab_size: 50258, num_layers: 1, signature: [1, 1], inp_dim: 16, head_dim: 8, head_num: 2, p_factor: [2, 1.3333333], ker_size: 4 }, 'writer');
const tensors = seededTensors(config, 1);
const optimizer = new Map([...tensors].flatMap(([name, t]) => [[`${name}.exp_avg`, t], [`${name}.exp_avg_sq`, t]] as const));
for (let step = 1; ; step++) {
  process.stdout.write(`begin ${step}\n`);
  await saveCheckpoint(dir, { config, tensors, optimizer, tokenizerJson: '{}', meta: { step } });
  process.stdout.write(`done ${step}\n`);
}
