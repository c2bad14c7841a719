//! Generates the golden test emails under fixtures/mail (and fixtures/mail-auth), and, with
//! `--golden`, the expected `process --json` output beside each (`NAME.json`, without
//! `case_id`). Review a changed .json before committing it: it is the contract.
//!
//!     cargo run --example gen_fixtures            # write the .eml files
//!     cargo run --example gen_fixtures -- --golden  # and (re)write the .json files

use std::collections::BTreeMap;
use std::path::Path;

use tjid_intake::forms::pdf_writer::{
    example_values, render, render_text_page, FilledForm, Layout,
};
use tjid_intake::forms::spec::FormKind;
use tjid_intake::mime::{build, Body, MailSpec, NameEncoding, Part};

const MANAGER: &str = "Örjan Lindqvist <orjan.lindqvist@vgregion.se>";
const DATE: &str = "Wed, 18 Nov 2026 10:00:00 +0100";

type Values = BTreeMap<String, String>;

fn order() -> Values {
    example_values(FormKind::Order)
}

fn dereg() -> Values {
    example_values(FormKind::Deregistration)
}

fn with(mut v: Values, changes: &[(&str, Option<&str>)]) -> Values {
    for (k, val) in changes {
        match val {
            Some(x) => {
                v.insert(k.to_string(), x.to_string());
            }
            None => {
                v.remove(*k);
            }
        }
    }
    v
}

fn pdf(kind: FormKind, layout: Layout, values: &Values) -> Vec<u8> {
    render(&[FilledForm {
        kind,
        layout,
        values,
    }])
    .expect("fixture form renders")
}

fn mail(name: &str, subject: &str) -> MailSpec {
    MailSpec::new(MANAGER, subject, &format!("<{name}@fixtures.tjid>"), DATE)
}

fn file(name: &str, content_type: &str, data: Vec<u8>, encoding: NameEncoding) -> Part {
    Part::File {
        name: name.into(),
        content_type: content_type.into(),
        data,
        encoding,
    }
}

fn fixtures() -> Vec<(&'static str, MailSpec)> {
    use FormKind::{Deregistration as D, Order as O};
    let mut out: Vec<(&'static str, MailSpec)> = Vec::new();
    let mut add = |name: &'static str, spec: MailSpec| out.push((name, spec));

    // Where a form can be.
    add(
        "order_acroform_ok",
        mail("order_acroform_ok", "Beställning eTjänstekort")
            .attach_pdf("TJID-101.pdf", pdf(O, Layout::Fillable, &order())),
    );
    add(
        "order_same_line_ok",
        mail("order_same_line_ok", "Beställning")
            .attach_pdf("bestallning.pdf", pdf(O, Layout::SameLine, &order())),
    );
    add(
        "order_table_ok",
        mail("order_table_ok", "Beställning")
            .attach_pdf("bestallning.pdf", pdf(O, Layout::Table, &order())),
    );
    add(
        "order_legacy_layout_ok",
        mail("order_legacy_layout_ok", "Beställning (gammal blankett)")
            .attach_pdf("gammal.pdf", pdf(O, Layout::Legacy, &order())),
    );
    add(
        "order_continued_on_page_2",
        mail("order_continued_on_page_2", "Beställning")
            .attach_pdf("tva-sidor.pdf", pdf(O, Layout::SameLineTwoPages, &order())),
    );
    {
        let second = with(
            order(),
            &[
                ("fornamn", Some("Mohammed")),
                ("efternamn", Some("Al-Sayed")),
                ("personnummer", Some("800161-3291")),
                ("epost", Some("Mohammed.Al-Sayed@VGREGION.SE")),
                ("mobil", Some("+46 (0)70 987 65 43")),
                ("befattning", Some("Läkare")),
                ("bestallningstyp", Some("Ersattning")),
                ("utlamning", Some("Utkorning")),
                ("utlamningsstalle", None),
                ("datum", Some("18 november 2026")),
            ],
        );
        let cover = [
            "Hej!",
            "Här kommer en beställning av eTjänstekort för två medarbetare.",
        ];
        let both = render(&[
            FilledForm {
                kind: O,
                layout: Layout::SameLine,
                values: &order(),
            },
            FilledForm {
                kind: O,
                layout: Layout::Table,
                values: &second,
            },
        ])
        .unwrap();
        add(
            "two_forms_in_one_pdf",
            mail("two_forms_in_one_pdf", "Två beställningar").attach_pdf("bestallningar.pdf", both),
        );
        let mut spec = mail("two_attachments", "Beställning och avregistrering");
        spec.parts.push(file(
            "följebrev.pdf",
            "application/pdf",
            render_text_page(&cover),
            NameEncoding::Rfc2231,
        ));
        spec.parts.push(file(
            "beställning.pdf",
            "application/pdf",
            pdf(O, Layout::SameLine, &second),
            NameEncoding::Rfc2231,
        ));
        spec.parts.push(file(
            "avregistrering.pdf",
            "application/octet-stream",
            pdf(D, Layout::Table, &dereg()),
            NameEncoding::Plain,
        ));
        add("two_attachments", spec);
    }
    {
        let inner = MailSpec::new(
            "Anna-Karin Åström <anna-karin.astrom@vgregion.se>",
            "Blankett",
            "<inner-1@fixtures.tjid>",
            "Tue, 17 Nov 2026 16:20:00 +0100",
        )
        .attach_pdf("blankett.pdf", pdf(O, Layout::SameLine, &order()));
        let mut spec = mail("forwarded_message", "VB: Blankett");
        spec.body =
            Body::Plain("Vidarebefordrar beställningen, som jag godkänner.\n\nÖrjan\n".into());
        spec.parts.push(Part::Forwarded(Box::new(inner)));
        add("forwarded_message", spec);
    }
    {
        let mut spec = mail("rfc2231_and_rfc2047_names", "Blankett med svenska tecken");
        spec.parts.push(file(
            "Beställning för Anna-Karin Åström, Vårdcentralen Ekmansgatan.pdf",
            "application/pdf",
            pdf(O, Layout::SameLine, &order()),
            NameEncoding::Rfc2231,
        ));
        let d = with(
            dereg(),
            &[
                ("namn", Some("Sven Gammal")),
                ("personnummer", Some("550505-6787")),
            ],
        );
        spec.parts.push(file(
            "Avregistrering Sven Gammal.pdf",
            "application/pdf",
            pdf(D, Layout::SameLine, &d),
            NameEncoding::Rfc2047,
        ));
        add("rfc2231_and_rfc2047_names", spec);
    }

    // Reasons on orders.
    add(
        "order_missing_fields",
        mail("order_missing_fields", "Beställning").attach_pdf(
            "b.pdf",
            pdf(
                O,
                Layout::SameLine,
                &with(
                    order(),
                    &[
                        ("mobil", None),
                        ("befattning", Some("")),
                        ("datum", Some("")),
                        ("bestallningstyp", Some("")),
                        ("utlamningsstalle", None),
                    ],
                ),
            ),
        ),
    );
    add(
        "order_invalid_fields",
        mail("order_invalid_fields", "Beställning").attach_pdf(
            "b.pdf",
            pdf(
                O,
                Layout::SameLine,
                &with(
                    order(),
                    &[
                        ("personnummer", Some("19121212-1213")),
                        ("vardgivare_orgnr", Some("232100-0132")),
                        ("vardenhet_hsaid", Some("SE232100013-E1")),
                        ("epost", Some("anna.astrom@")),
                        ("mobil", Some("031-345 67 00")),
                        ("datum", Some("2026-07-01")),
                        ("utlamning", Some("Utlamningsstalle,Utkorning")),
                        ("vc_epost", Some("orjan lindqvist@vgregion")),
                    ],
                ),
            ),
        ),
    );
    add(
        "order_person_not_in_kiv",
        mail("order_person_not_in_kiv", "Beställning").attach_pdf(
            "b.pdf",
            pdf(
                O,
                Layout::SameLine,
                &with(
                    order(),
                    &[
                        ("fornamn", Some("Nils")),
                        ("efternamn", Some("Okänd")),
                        ("personnummer", Some("660606-1239")),
                    ],
                ),
            ),
        ),
    );
    add(
        "order_person_not_at_unit",
        mail("order_person_not_at_unit", "Beställning").attach_pdf(
            "b.pdf",
            pdf(
                O,
                Layout::SameLine,
                &with(
                    order(),
                    &[
                        ("fornamn", Some("Bo")),
                        ("efternamn", Some("Ek")),
                        ("personnummer", Some("8209303455")),
                    ],
                ),
            ),
        ),
    );
    add(
        "order_unit_not_in_kiv",
        mail("order_unit_not_in_kiv", "Beställning").attach_pdf(
            "b.pdf",
            pdf(
                O,
                Layout::SameLine,
                &with(
                    order(),
                    &[("vardenhet_hsaid", Some("se2321000131-E000000009999"))],
                ),
            ),
        ),
    );
    {
        let v = with(
            order(),
            &[
                ("vardgivare_namn", Some("Friskvård Syd AB")),
                ("vardgivare_orgnr", Some("556677-1233")),
                ("vardenhet_namn", Some("Friskvård Syd Borås")),
                ("vardenhet_hsaid", Some("SE5566771233-E000000000001")),
                ("fornamn", Some("Elin")),
                ("efternamn", Some("Ung")),
                ("personnummer", Some("19991231-2460")),
                ("epost", Some("elin.ung@friskvardsyd.se")),
                ("vc_namn", Some("Eva Nord")),
                ("vc_epost", Some("eva.nord@friskvardsyd.se")),
            ],
        );
        let mut spec = MailSpec::new(
            "Eva Nord <eva.nord@friskvardsyd.se>",
            "Beställning",
            "<order_provider_not_connected@fixtures.tjid>",
            DATE,
        );
        spec = spec.attach_pdf("b.pdf", pdf(O, Layout::SameLine, &v));
        add("order_provider_not_connected", spec);
    }
    add(
        "order_sender_not_manager",
        MailSpec::new(
            "Anna-Karin Åström <anna-karin.astrom@vgregion.se>",
            "Min beställning",
            "<order_sender_not_manager@fixtures.tjid>",
            DATE,
        )
        .attach_pdf("b.pdf", pdf(O, Layout::SameLine, &order())),
    );
    add(
        "order_name_mismatch",
        mail("order_name_mismatch", "Beställning").attach_pdf(
            "b.pdf",
            pdf(
                O,
                Layout::SameLine,
                &with(
                    order(),
                    &[("fornamn", Some("Annika")), ("efternamn", Some("Åströmm"))],
                ),
            ),
        ),
    );
    add(
        "order_first_name_part_ok",
        mail("order_first_name_part_ok", "Beställning").attach_pdf(
            "b.pdf",
            pdf(
                O,
                Layout::Table,
                &with(
                    order(),
                    &[
                        ("fornamn", Some("Karin")),
                        ("personnummer", Some("121212+1212")),
                        ("datum", Some("17/11 2026")),
                    ],
                ),
            ),
        ),
    );
    {
        let v = with(
            order(),
            &[
                ("vardgivare_namn", Some("Tandläkare Per Karlsson")),
                ("vardgivare_orgnr", Some("19650302-4561")),
                ("vardenhet_namn", Some("Tandläkare Karlsson")),
                ("vardenhet_hsaid", Some("SE6503024561-E000000000001")),
                ("fornamn", Some("Per")),
                ("efternamn", Some("Karlsson")),
                ("personnummer", Some("196503024561")),
                ("epost", Some("per@tandlakarekarlsson.se")),
                ("vc_namn", Some("Per Karlsson")),
                ("vc_epost", Some("per@tandlakarekarlsson.se")),
                ("befattning", Some("Tandläkare")),
                ("utlamningsstalle", Some("Receptionen, Regionens hus")),
            ],
        );
        add(
            "order_sole_trader",
            MailSpec::new(
                "Per Karlsson <Per@TandlakareKarlsson.se>",
                "Beställning",
                "<order_sole_trader@fixtures.tjid>",
                DATE,
            )
            .attach_pdf("b.pdf", pdf(O, Layout::Fillable, &v)),
        );
    }
    {
        let mut spec = mail("order_in_body", "Beställning av kort");
        spec.body = Body::Plain("Hej, vi vill beställa ett kort.\n\nFörnamn: Anna-Karin\nEfternamn: Åström\nPersonnummer: 19121212-1212\nBefattning: Sjuksköterska\nMobiltelefon: 070-123 45 67\n\nMvh Örjan\n".into());
        add("order_in_body", spec);
    }
    {
        let mut spec = mail("no_form_question", "Fråga om kort");
        spec.body = Body::Plain(
            "Hej!\n\nHur beställer vi eTjänstekort till en ny medarbetare?\n\nMvh Örjan\n".into(),
        );
        add("no_form_question", spec);
    }
    add(
        "no_form_cover_letter_only",
        mail("no_form_cover_letter_only", "Beställning").attach_pdf(
            "brev.pdf",
            render_text_page(&[
                "Hej!",
                "Här kommer en beställning av eTjänstekort.",
                "Blanketten skickas separat.",
                "Med vänlig hälsning, Örjan",
            ]),
        ),
    );
    {
        let mut spec = mail("unreadable_broken_pdf", "Beställning");
        spec.parts.push(file(
            "bestallning.pdf",
            "application/pdf",
            b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer garbage"
                .to_vec(),
            NameEncoding::Plain,
        ));
        spec.parts.push(file(
            "lasmig.txt",
            "text/plain",
            b"Ingen blankett".to_vec(),
            NameEncoding::Plain,
        ));
        add("unreadable_broken_pdf", spec);
    }

    // Deregistrations.
    {
        let mut spec = mail("dereg_body_notice", "Avregistrering av eTjänstekort");
        spec.body = Body::Plain("Hej!\n\nAvregistrering av eTjänstekort\n\nKortinnehavarens namn: Anna-Karin Åström\nPersonnummer: 121212+1212\nKortnummer: 9752 2679 0010 0000 120\nVårdenhet: Vårdcentralen Ekmansgatan\nKlippt kort mottaget: Ja\nVerksamhetschef: Örjan Lindqvist\nDatum: 2026-11-18\n\nMed vänlig hälsning\nÖrjan Lindqvist\nVerksamhetschef\n".into());
        add("dereg_body_notice", spec);
    }
    {
        let mut spec = mail("dereg_html_only", "Avregistrera kort");
        spec.body = Body::Html("<html><body><p>Hej!</p><table><tr><td>Kortinnehavarens namn:</td><td>Sven Gammal</td></tr></table><p>Personnummer: 19550505-6787<br>Kortnummer: 9752267900100000120<br>V&aring;rdenhet: V&aring;rdcentralen Ekmansgatan<br>V&aring;rdenhetens HSA-id: SE2321000131-E000000000101<br>Klippt kort mottaget: Ja<br>Verksamhetschef: &Ouml;rjan Lindqvist<br>Datum: 2026-11-17</p></body></html>".into());
        add("dereg_html_only", spec);
    }
    add(
        "dereg_table_ok",
        mail("dereg_table_ok", "Avregistrering")
            .attach_pdf("avreg.pdf", pdf(D, Layout::Table, &dereg())),
    );
    add(
        "dereg_acroform_cut_card_no",
        mail("dereg_acroform_cut_card_no", "Avregistrering").attach_pdf(
            "avreg.pdf",
            pdf(
                D,
                Layout::Fillable,
                &with(dereg(), &[("klippt_kort", Some("Nej"))]),
            ),
        ),
    );
    add(
        "dereg_cut_card_missing",
        mail("dereg_cut_card_missing", "Avregistrering").attach_pdf(
            "avreg.pdf",
            pdf(
                D,
                Layout::SameLine,
                &with(dereg(), &[("klippt_kort", None)]),
            ),
        ),
    );
    add(
        "dereg_warnings",
        MailSpec::new(
            "Karin Berg <karin.berg@vgregion.se>",
            "Avregistrering",
            "<dereg_warnings@fixtures.tjid>",
            DATE,
        )
        .attach_pdf(
            "avreg.pdf",
            pdf(
                D,
                Layout::SameLine,
                &with(
                    dereg(),
                    &[
                        ("namn", Some("Anna Åberg")),
                        ("kortnummer", Some("9752 2679 0010 0000 121")),
                        ("vardenhet_hsaid", None),
                        ("vardenhet_namn", Some("Vårdcentralen Finns Inte")),
                    ],
                ),
            ),
        ),
    );
    add(
        "dereg_employment_gone_wrong_manager",
        MailSpec::new(
            "Karin Berg <karin.berg@vgregion.se>",
            "Avregistrering",
            "<dereg_employment_gone_wrong_manager@fixtures.tjid>",
            DATE,
        )
        .attach_pdf(
            "avreg.pdf",
            pdf(
                D,
                Layout::SameLine,
                &with(
                    dereg(),
                    &[
                        ("namn", Some("Bo Ek")),
                        ("personnummer", Some("198209303455")),
                    ],
                ),
            ),
        ),
    );
    add(
        "dereg_invalid_card",
        mail("dereg_invalid_card", "Avregistrering").attach_pdf(
            "avreg.pdf",
            pdf(
                D,
                Layout::Legacy,
                &with(
                    dereg(),
                    &[
                        ("kortnummer", Some("1234 5678 9012 3456 789")),
                        ("vardenhet_hsaid", Some("SE2321000131-E000000000101")),
                    ],
                ),
            ),
        ),
    );

    // Ignored.
    add(
        "ignored_own_mail",
        MailSpec::new(
            "TjänsteID-service <tjansteid-intake@vgregion.se>",
            "Re: Beställning",
            "<ignored_own_mail@fixtures.tjid>",
            DATE,
        )
        .attach_pdf("b.pdf", pdf(O, Layout::SameLine, &order())),
    );
    {
        let mut spec = MailSpec::new(
            "Mail Delivery System <MAILER-DAEMON@mx.vgregion.se>",
            "Undelivered Mail Returned to Sender",
            "<ignored_bounce@fixtures.tjid>",
            DATE,
        );
        spec.headers.push(("Return-Path".into(), "<>".into()));
        spec.body = Body::Plain("This is the mail system at host mx.vgregion.se.\n\nI'm sorry to have to inform you that your message could not be delivered.\n".into());
        add("ignored_bounce", spec);
    }
    {
        let mut spec = mail("ignored_auto_reply", "Autosvar: Beställning");
        spec.headers
            .push(("Auto-Submitted".into(), "auto-replied".into()));
        spec.body = Body::Plain("Jag är på semester till och med 30 november.\n".into());
        add("ignored_auto_reply", spec);
    }
    {
        let mut spec = mail("ignored_out_of_office_subject", "Frånvaro: Re: Beställning");
        spec.body = Body::Plain("Jag är ledig.\n".into());
        add("ignored_out_of_office_subject", spec);
    }
    // Sorts after order_same_line_ok, whose Message-ID it repeats.
    {
        let mut spec = mail("order_same_line_ok", "Beställning");
        spec = spec.attach_pdf("bestallning.pdf", pdf(O, Layout::SameLine, &order()));
        add("zz_duplicate_of_order_same_line_ok", spec);
    }
    out
}

fn auth_fixtures() -> Vec<(&'static str, MailSpec)> {
    let form = pdf(FormKind::Order, Layout::SameLine, &order());
    let mut forged = mail("auth_forged_lower_header", "Beställning");
    forged.headers.push(("Authentication-Results".into(), "mx.vgregion.se; spf=fail smtp.mailfrom=evil.example; dkim=none; dmarc=fail header.from=vgregion.se".into()));
    forged.headers.push((
        "Authentication-Results".into(),
        "mx.vgregion.se; dmarc=pass header.from=vgregion.se".into(),
    ));
    let forged = forged.attach_pdf("b.pdf", form.clone());
    let mut other = mail("auth_other_server_only", "Beställning");
    other.headers.push((
        "Authentication-Results".into(),
        "relay.evil.example; dmarc=pass header.from=vgregion.se".into(),
    ));
    let other = other.attach_pdf("b.pdf", form.clone());
    let mut ok = mail("auth_pass", "Beställning");
    ok.headers.push(("Authentication-Results".into(), "mx.vgregion.se 1; spf=pass smtp.mailfrom=vgregion.se;\r\n dkim=pass header.d=vgregion.se; dmarc=pass (p=reject) header.from=vgregion.se".into()));
    let ok = ok.attach_pdf("b.pdf", form);
    let mut none = mail("auth_no_form_unauthenticated", "Fråga");
    none.body = Body::Plain("Hej, en fråga.\n".into());
    vec![
        ("auth_forged_lower_header", forged),
        ("auth_other_server_only", other),
        ("auth_pass", ok),
        ("auth_no_form_unauthenticated", none),
    ]
}

fn write_all(dir: &Path, set: &[(&str, MailSpec)]) {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "eml") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    for (name, spec) in set {
        std::fs::write(dir.join(format!("{name}.eml")), build(spec)).unwrap();
    }
    println!("wrote {} emails to {}", set.len(), dir.display());
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    write_all(&root.join("fixtures/mail"), &fixtures());
    write_all(&root.join("fixtures/mail-auth"), &auth_fixtures());
    if std::env::args().any(|a| a == "--golden") {
        for (dir, config) in [
            ("fixtures/mail", "tests/golden.toml"),
            ("fixtures/mail-auth", "tests/golden-auth.toml"),
        ] {
            let out = std::process::Command::new(env!("CARGO"))
                .current_dir(root)
                .args([
                    "run",
                    "-q",
                    "--",
                    "--config",
                    config,
                    "process",
                    "--dry-run",
                    "--json",
                    dir,
                ])
                .output()
                .expect("run tjid-intake");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            for line in String::from_utf8(out.stdout).unwrap().lines() {
                let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
                for case in v["cases"].as_array_mut().unwrap() {
                    case.as_object_mut().unwrap().remove("case_id");
                }
                let source = v["source"].as_str().unwrap().to_string();
                let json_path = root.join(source.replace(".eml", ".json"));
                std::fs::write(&json_path, serde_json::to_string_pretty(&v).unwrap() + "\n")
                    .unwrap();
            }
            println!("wrote golden outputs for {dir}");
        }
    }
}
