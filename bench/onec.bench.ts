import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as iconv from 'iconv-lite';
import { judgeOnecDocument } from '../adapters/erp/onec-exchange/onec-document.judge';
import { readOnecExchangeFile } from '../adapters/erp/onec-exchange/onec-exchange.reader';

/**
 * `npm run bench:onec`: parse throughput and peak RSS of the 1C reader on a generated 200 MB
 * statement file (cp1251, CRLF), next to a plain line split of the same bytes in the same run.
 * Targets (issue 12): >= 100 MB/s and <= 150 MB RSS. Figures only: no pass/fail here.
 */
const TARGET_BYTES = Number(process.env.BENCH_ONEC_MB ?? 200) * 1024 * 1024;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const mb = (n: number): string => (n / 1024 / 1024).toFixed(1);

function documentText(i: number): string {
  const n = String(100000 + i);
  const day = String(1 + (i % 28)).padStart(2, '0');
  return [
    'СекцияДокумент=Выписка',
    'ВидДокумента=ПлатежноеПоручение',
    `НомерДокумента=${n}`,
    `ДатаДокумента=${day}.03.2025`,
    `ДатаОперации=${day}.03.2025`,
    `ДатаВалютирования=${day}.03.2025`,
    `СуммаРасход=${(i % 1000000) + 1}.${String(i % 100).padStart(2, '0')}`,
    `Сумма=${(i % 1000000) + 1}.${String(i % 100).padStart(2, '0')}`,
    'Валюта=KZT',
    'ПлательщикНаименование=ТОО "Пример Плательщик"',
    'ПлательщикБИН_ИИН=200540000019',
    'ПлательщикКБЕ=17',
    'ПлательщикИИК=KZ35601A000000012345',
    'ПлательщикБанкНаименование=АО "Народный Банк Казахстана"',
    'ПлательщикБанкБИК=HSBKKZKX',
    `ПолучательНаименование=ТОО "Получатель ${i % 977}"`,
    'ПолучательБИН_ИИН=190840000015',
    'ПолучательКБЕ=17',
    'ПолучательИИК=KZ78722S000000067890',
    'ПолучательБанкНаименование=АО "Kaspi Bank"',
    'ПолучательБанкБИК=CASPKZKA',
    `НазначениеПлатежа=Оплата по счету №${n} от ${day}.03.2025 за товары, в т.ч. НДС 12%`,
    'КодНазначенияПлатежа=710',
    `ДатаСписано=${day}.03.2025`,
    'КонецДокумента',
    '',
  ].join('\r\n');
}

async function generate(path: string): Promise<number> {
  const out = createWriteStream(path);
  const header = ['1CClientBankExchange', 'ВерсияФормата=1.03', 'Кодировка=Windows', 'Отправитель=bench', 'РасчСчет=KZ35601A000000012345', 'СекцияРасчСчет', 'РасчСчет=KZ35601A000000012345', 'НачальныйОстаток=0.00', 'КонецРасчСчет', ''].join('\r\n');
  let written = 0;
  const write = (b: Buffer): Promise<void> | void => {
    written += b.length;
    if (!out.write(b)) return new Promise((r) => out.once('drain', () => r()));
  };
  await write(iconv.encode(header, 'cp1251'));
  let i = 0;
  while (written < TARGET_BYTES) {
    const batch: string[] = [];
    for (let k = 0; k < 500; k += 1) batch.push(documentText(i++));
    await write(iconv.encode(batch.join(''), 'cp1251'));
  }
  await write(iconv.encode('КонецФайла\r\n', 'cp1251'));
  await new Promise<void>((r, j) => out.end((err?: Error | null) => (err ? j(err) : r())));
  return i;
}

async function lineSplit(path: string): Promise<{ seconds: number; lines: number }> {
  const t0 = process.hrtime.bigint();
  let lines = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
    let pos = chunk.indexOf(10);
    while (pos >= 0) {
      lines += 1;
      pos = chunk.indexOf(10, pos + 1);
    }
  }
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, lines };
}

async function parse(path: string, judge: boolean): Promise<{ seconds: number; documents: number; invalid: number; peakRss: number }> {
  const now = new Date('2025-03-31T04:00:00Z');
  let peakRss = process.memoryUsage.rss();
  const t0 = process.hrtime.bigint();
  let documents = 0;
  let invalid = 0;
  for await (const e of readOnecExchangeFile(path)) {
    if (e.type !== 'document') continue;
    documents += 1;
    if (judge) {
      if (!judgeOnecDocument(e.document, { now }).ok) invalid += 1;
    } else if (e.document.errors.length > 0) invalid += 1;
    if ((documents & 1023) === 0) peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, documents, invalid, peakRss };
}

async function main(): Promise<void> {
  // BENCH_ONEC_FILE keeps the generated file at that path (for profiling); otherwise a temp dir.
  const keep = process.env.BENCH_ONEC_FILE;
  const dir = keep ? undefined : mkdtempSync(join(tmpdir(), 'onec-bench-'));
  const path = keep ?? join(dir as string, 'kl_to_1c.txt');
  try {
    const generated = await generate(path);
    const size = statSync(path).size;
    console.log(`file: ${mb(size)} MB, ${generated} documents, cp1251 CRLF (${path})`);
    gc();
    const split = await lineSplit(path);
    console.log(`plain line split:        ${(size / 1024 / 1024 / split.seconds).toFixed(1)} MB/s (${split.seconds.toFixed(2)} s, ${split.lines} lines)`);
    gc();
    const p = await parse(path, false);
    console.log(`onec reader:             ${(size / 1024 / 1024 / p.seconds).toFixed(1)} MB/s (${p.seconds.toFixed(2)} s, ${p.documents} documents, ${p.invalid} with errors), peak RSS ${mb(p.peakRss)} MB`);
    gc();
    const j = await parse(path, true);
    console.log(`onec reader + rules:     ${(size / 1024 / 1024 / j.seconds).toFixed(1)} MB/s (${j.seconds.toFixed(2)} s, ${j.invalid} invalid), peak RSS ${mb(j.peakRss)} MB`);
    console.log(`process peak RSS (maxRSS, whole run): ${(process.resourceUsage().maxRSS / 1024).toFixed(1)} MB; targets: >= 100 MB/s, <= 150 MB RSS`);
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
