/**
 * The examples of a fine-tuning file, parsed, one at a time, for a trainer: the file is
 * read line by line (jsonl-lines.ts), so a pass over a large file holds one example at a
 * time and can be repeated per epoch by reading the file again. Meant for a file that
 * validateDataset accepted; a line that is not a valid example still throws a
 * DatasetFormatError (line, code) rather than being skipped silently.
 */
import { DatasetFormatError } from './dataset-error.js';
import { parseExampleLine } from './check-example.js';
import type { TrainingExample } from './example-types.js';
import { isBlank, readLines, type DatasetSource } from './jsonl-lines.js';

export interface NumberedExample {
  /** 1-based line of the example in the file. */
  line: number;
  example: TrainingExample;
}

export async function* readExamples(source: DatasetSource): AsyncGenerator<NumberedExample> {
  let blank: number | undefined;
  for await (const { number, text } of readLines(source)) {
    if (isBlank(text)) {
      blank ??= number;
      continue;
    }
    if (blank !== undefined) throw new DatasetFormatError(blank, { code: 'blank_line', message: 'blank line between examples' });
    if (text === null) throw new DatasetFormatError(number, { code: 'invalid_utf8', message: 'the line is not valid UTF-8' });
    const check = parseExampleLine(text);
    if (!check.ok) throw new DatasetFormatError(number, check.problems[0]!);
    yield { line: number, example: check.example };
  }
}
